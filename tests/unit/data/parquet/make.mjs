// tests/unit/data/parquet/make.mjs - the Parquet fixtures of
// tests/unit/test_parquet.c, written by DuckDB's own Parquet writer.
//
//   tests/npm_ci.sh tests/bench/duckdb && node tests/unit/data/parquet/make.mjs
//
// For each case NAME it writes a Parquet file to a temporary folder and
// keeps, beside this script:
//   NAME.tail    the file's last bytes: the footer and the 8-byte tail
//   NAME.expect  the file's size, its row group count and, per column
//                chunk, what DuckDB's parquet_metadata() reports:
//                chunk ROW_GROUP NUM_ROWS COLUMN DATA_PAGE DICT_PAGE SIZE
//                (DICT_PAGE "-" when it is not set)
// so the unit test checks the parser against DuckDB without DuckDB.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const bench = join(here, "..", "..", "..", "bench", "duckdb");
const req = createRequire(join(bench, "package.json"));
const { DuckDBInstance } = await import(pathToFileURL(req.resolve("@duckdb/node-api")).href);

const CASES = {
	// three groups; v and s dictionary encoded, id plain
	dict: `SELECT range AS id, range % 10 AS v, 'cat-' || (range % 7) AS s
	       FROM range(10000)`,
	// no dictionary pages at all; zstd
	plain: `SELECT range AS id, range * 1.5 AS d, md5(range::VARCHAR) AS h
	        FROM range(3000)`,
	// nested: a struct, a list and a map make six leaf columns
	nested: `SELECT range AS id, {'a': range % 5, 'b': 'x' || range} AS st,
	                [range, range + 1] AS l, MAP {'k': range} AS m
	         FROM range(5000)`,
	// 300 row groups
	many: `SELECT range AS id, range % 3 AS v FROM range(300 * 2048)`,
	// no rows, no row groups
	empty: `SELECT range AS id FROM range(0)`,
};
const OPTIONS = {
	dict: "ROW_GROUP_SIZE 4096",
	plain: "ROW_GROUP_SIZE 2048, DICTIONARY_SIZE_LIMIT 1, COMPRESSION zstd",
	nested: "ROW_GROUP_SIZE 4096",
	many: "ROW_GROUP_SIZE 2048",
	empty: "",
};

const sq = (s) => "'" + String(s).replaceAll("'", "''") + "'";
const db = await DuckDBInstance.create(":memory:");
const c = await db.connect();
const version = (await c.runAndReadAll("SELECT version()")).getRows()[0][0];
const tmp = mkdtempSync(join(tmpdir(), "parquet-fixtures-"));
try {
	for (const [name, query] of Object.entries(CASES)) {
		const file = join(tmp, `${name}.parquet`);
		const opts = OPTIONS[name] ? `, ${OPTIONS[name]}` : "";
		await c.run(`COPY (${query}) TO ${sq(file)} (FORMAT parquet${opts})`);
		const bytes = readFileSync(file);
		const size = statSync(file).size;
		const footer = bytes.readUInt32LE(size - 8);
		writeFileSync(join(here, `${name}.tail`), bytes.subarray(size - 8 - footer));
		const groups = (await c.runAndReadAll(
			`SELECT num_row_groups FROM parquet_file_metadata(${sq(file)})`)).getRows()[0][0];
		const rows = (await c.runAndReadAll(
			`SELECT row_group_id, row_group_num_rows, column_id, data_page_offset,
			        dictionary_page_offset, total_compressed_size
			 FROM parquet_metadata(${sq(file)})
			 ORDER BY row_group_id, column_id`)).getRows();
		const lines = [
			`# ${name}.parquet from DuckDB ${version}: COPY (${query.replace(/\s+/g, " ")})`,
			`#   (FORMAT parquet${opts})`,
			`file_size ${size}`,
			`groups ${groups}`,
			...rows.map((r) => "chunk " + r.map((v) => (v === null ? "-" : String(v))).join(" ")),
		];
		writeFileSync(join(here, `${name}.expect`), lines.join("\n") + "\n");
		console.log(`${name}: ${size} bytes, footer ${footer}, ${groups} groups, ${rows.length} chunks`);
	}
} finally {
	rmSync(tmp, { recursive: true, force: true });
}
