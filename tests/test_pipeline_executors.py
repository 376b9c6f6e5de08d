"""The same bytes on 1 process, 2 processes and a Dask cluster (API and CLI); per-file time limits on every executor."""
import hashlib
from pathlib import Path

import pytest

from conftest import recipe_covering_burned_in
from pseudicom.cli import main
from pseudicom.pipeline import run
from pseudicom.synth import synthesize_ct_series


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(synth_set, tmp_path_factory):
    "The synthetic study set plus 40 small CT slices, so that chunks and the in-flight window matter."
    import shutil
    src, truth = synth_set
    root = tmp_path_factory.mktemp("exec") / "in"
    shutil.copytree(src, root / "synth")
    synthesize_ct_series(root / "ct", 40, rows=64, columns=64, seed=3)
    return root, recipe_covering_burned_in("pseudonymize", src, truth)


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        with distributed.Client(c) as client:
            yield c, client


def test_one_process_two_processes_and_dask_write_identical_trees(corpus, cluster, test_key, tmp_path):
    src, recipe = corpus
    lc, client = cluster
    r1 = run(recipe, src, tmp_path / "one", key=test_key, workers=1)
    r2 = run(recipe, src, tmp_path / "two", key=test_key, workers=2, chunk_size=3)
    r3 = run(recipe, src, tmp_path / "dask", key=test_key, executor=client)
    r4 = run(recipe, src, tmp_path / "dask-ex", key=test_key, executor=client.get_executor(), chunk_size=1)
    assert r1.ok and r1.counts["written"] >= 50
    assert r1.workers == "1 process" and r2.workers == "2 processes" and r3.workers.startswith("dask")
    reference = tree(tmp_path / "one")
    for name in ("two", "dask", "dask-ex"):
        assert tree(tmp_path / name) == reference, name
    for r in (r2, r3, r4):
        assert [(f.source, f.status, f.digest) for f in r.files] == [(f.source, f.status, f.digest) for f in r1.files]
        assert Path(r.audit_path).read_bytes() == Path(r1.audit_path).read_bytes()
        assert r.action_counts == r1.action_counts


def test_cli_dask_option(corpus, cluster, test_key, tmp_path):
    src, recipe = corpus
    lc, _ = cluster
    key_file = tmp_path / "k.key"
    key_file.write_text(test_key._secret.hex())
    key_file.chmod(0o600)
    recipe_file = recipe.save(tmp_path / "recipe.yaml")
    assert main(["deid", str(src), str(tmp_path / "cli-dask"), "--recipe", str(recipe_file), "--key-file", str(key_file),
                 "--dask", lc.scheduler_address, "--quiet"]) == 0
    assert main(["deid", str(src), str(tmp_path / "cli-1"), "--recipe", str(recipe_file), "--key-file", str(key_file),
                 "--workers", "1", "--quiet"]) == 0
    assert tree(tmp_path / "cli-dask") == tree(tmp_path / "cli-1")


@pytest.mark.parametrize("where", ["processes", "dask"])
def test_per_file_time_limit_fails_the_file_not_the_batch(corpus, cluster, test_key, tmp_path, where):
    src, recipe = corpus
    kw = {"executor": cluster[1]} if where == "dask" else {"workers": 2}
    r = run(recipe, src / "ct", tmp_path / "out", key=test_key, timeout=1e-6, **kw)
    assert r.counts["failed"] == r.counts["inputs"] == 40
    assert all("per-file time limit" in f.reason for f in r.files)
    assert not [p for p in (tmp_path / "out").rglob("*.dcm")]
    ok = run(recipe, src / "ct", tmp_path / "out", key=test_key, timeout=60, **kw)   # and the same folder then completes
    assert ok.ok and ok.counts["written"] == 40
