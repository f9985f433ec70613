"""Listing is streamed page by page from S3."""

import os
import stat
import time

import pytest

from hylib import LIST10K_COUNT, LIST10K_DIR, list10k_keys

CACHE = "entry_timeout=60,attr_timeout=60"


def lists_for(proxy, folder):
    return proxy.requests("LIST", lambda r: r.params.get("prefix", "").startswith(folder))


@pytest.mark.timeout(600)  # the first user of bucket_10k uploads it
def test_reading_100_entries_makes_one_list_request(bucket_10k, proxy, ws, mounter):
    m = mounter.mount(ws.s3_config(bucket_10k, endpoint=proxy.url), opts=CACHE)
    assert stat.S_ISDIR(os.stat(m / "big").st_mode)  # the lookup happens before counting
    time.sleep(0.3)
    proxy.reset_counts()
    names = []
    with os.scandir(m / "big") as it:
        for e in it:
            names.append(e.name)
            if len(names) == 100:
                break
    time.sleep(1.0)  # let any background prefetch show up
    lists = lists_for(proxy, LIST10K_DIR)
    assert len(lists) == 1, (
        f"reading 100 of 10,000 entries made {len(lists)} LIST requests for {LIST10K_DIR} "
        f"(the folder's st_blksize is {os.stat(m / 'big').st_blksize}: glibc's readdir asks "
        f"for that many bytes of entries at once): {[r.query for r in lists][:3]}")
    assert len(set(names)) == 100
    assert set(names) <= {k[len(LIST10K_DIR):] for k in list10k_keys()}


def test_full_listing_of_10000_entries(bucket_10k, proxy, ws, mounter):
    m = mounter.mount(ws.s3_config(bucket_10k, endpoint=proxy.url), opts=CACHE)
    assert sorted(os.listdir(m.path)) == ["big", "other", "zzz.txt"]
    os.stat(m / "big")
    proxy.reset_counts()
    names = os.listdir(m / "big")
    assert len(names) == LIST10K_COUNT
    assert set(names) == {k[len(LIST10K_DIR):] for k in list10k_keys()}
    lists = lists_for(proxy, LIST10K_DIR)
    assert 10 <= len(lists) <= 11, f"{len(lists)} LIST requests for 10,000 keys in pages of 1,000"
    total = sum(proxy.counts.values())
    assert total <= 30, f"listing 10,000 names made {total} requests: {dict(proxy.counts)}"

    # a listing abandoned half way does not disturb the next one
    with os.scandir(m / "big") as it:
        for i, _ in enumerate(it):
            if i == 2500:
                break
    assert len(os.listdir(m / "big")) == LIST10K_COUNT
