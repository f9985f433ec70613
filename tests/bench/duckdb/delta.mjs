// tests/bench/duckdb/delta.mjs - DuckDB (from npm, pinned by package-lock.json)
// for tests/bench/lakehouse_duckdb.py and tests/demo.
//
//   node delta.mjs write DIR FIRST NFILES ROWS
//       write DIR/part-NNNNN.parquet for NNNNN = FIRST .. FIRST+NFILES-1, each
//       ROWS rows (id, v = id % 1000, s = a short string), real Parquet from
//       DuckDB's own writer
//   node delta.mjs query TABLE_DIR
//       read the Delta table at TABLE_DIR the way a Delta reader does: the
//       pointer file _delta_log/_last_checkpoint (these tables have no
//       checkpoint, so it is absent and the log is read from version 0),
//       the listing of _delta_log/, every commit
//       in version order (add and remove actions), then
//       SELECT count(*), sum(v) FROM read_parquet([the live files]).
//       Prints one JSON line: {"seconds", "count", "sum", "files", "commits"};
//       seconds covers everything from the pointer file to the result.
//
// One query per process: DuckDB keeps no state between two runs.
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";

const sq = (s) => "'" + String(s).replaceAll("'", "''") + "'";

async function connect() {
	const db = await DuckDBInstance.create(":memory:");
	return db.connect();
}

async function write(dir, first, nfiles, rows) {
	const c = await connect();
	for (let i = first; i < first + nfiles; i++) {
		const id0 = i * rows;
		const out = join(dir, `part-${String(i).padStart(5, "0")}.parquet`);
		await c.run(`COPY (SELECT ${id0}::BIGINT + range AS id,
		                          (${id0}::BIGINT + range) % 1000 AS v,
		                          'row-' || (${id0}::BIGINT + range) AS s
		                   FROM range(${rows}))
		             TO ${sq(out)} (FORMAT parquet)`);
	}
}

function liveFiles(table) {
	const log = join(table, "_delta_log");
	let pointer = null;
	try {
		pointer = readFileSync(join(log, "_last_checkpoint"), "utf8");
	} catch (e) {
		if (e.code !== "ENOENT") throw e;
	}
	if (pointer !== null) throw new Error(`${log}: checkpoints are not supported here`);
	const commits = readdirSync(log).filter((n) => /^\d{20}\.json$/.test(n)).sort();
	const live = new Set();
	for (const c of commits) {
		for (const line of readFileSync(join(log, c), "utf8").split("\n")) {
			if (!line.trim()) continue;
			const a = JSON.parse(line);
			if (a.add) live.add(decodeURIComponent(a.add.path));
			if (a.remove) live.delete(decodeURIComponent(a.remove.path));
		}
	}
	return { files: [...live].sort().map((p) => join(table, p)), commits: commits.length };
}

async function query(table) {
	const c = await connect();
	const t0 = process.hrtime.bigint();
	const { files, commits } = liveFiles(table);
	const r = await c.runAndReadAll(
		`SELECT count(*), sum(v) FROM read_parquet([${files.map(sq).join(", ")}])`);
	const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
	const [count, sum] = r.getRows()[0];
	console.log(JSON.stringify({ seconds, count: Number(count), sum: Number(sum),
		files: files.length, commits }));
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === "write" && args.length === 4) {
	await write(args[0], Number(args[1]), Number(args[2]), Number(args[3]));
} else if (cmd === "query" && args.length === 1) {
	await query(args[0]);
} else {
	console.error("usage: node delta.mjs write DIR FIRST NFILES ROWS | query TABLE_DIR");
	process.exit(2);
}
