"""Fuzzed policy YAML, config YAML and replay files (docs/fuzzing.md): a bad file fails with a
PolicyError (or, for replay, a ReplayFileError) that names the file and the fix, never with a
traceback of another type."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import fastavro
import pytest
import yaml
from fuzzing import EXAMPLES, FUZZ, garbage, raws, records_of
from hypothesis import given, settings
from hypothesis import strategies as st

from policy import DEFAULT_DIR, PolicyError, load_policy
from streams.codecs import Decoder, load_schema
from streams.config import load_config
from streams.replay import ReplayFileError, read_raw

POLICY_FILES = sorted(p.relative_to(DEFAULT_DIR) for p in DEFAULT_DIR.rglob("*.yaml"))
FILES = settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))  # each example loads the whole policy
yaml_text_mutations = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b"\xff\xfe", b"? [a, b]\n: 1\n", b"[" * 5000, b"{a: 1, a: 2}", b"!!python/object:os.system x", b"\t"]
    ),
)


@st.composite
def mutated_yaml(draw: st.DrawFn, data: object) -> bytes:
    """The file's data with one node dropped, retyped or garbled (as YAML), or its text broken."""
    if draw(st.integers(0, 4)) == 0:
        return yaml.safe_dump(data).encode()[: draw(st.integers(0, 400))] + draw(yaml_text_mutations)
    node = data
    while isinstance(node, dict | list) and node and draw(st.integers(0, 2)):
        key = draw(st.sampled_from(sorted(node, key=str) if isinstance(node, dict) else range(len(node))))
        if not isinstance(node[key], dict | list) or not node[key]:
            break
        node = node[key]
    if isinstance(node, dict) and node:
        key = draw(st.sampled_from(sorted(node, key=str)))
        how = draw(st.sampled_from(["drop", "garbage", "rename"]))
        if how == "drop":
            del node[key]
        elif how == "garbage":
            node[key] = draw(garbage)
        else:
            node[f"{key}x"] = node.pop(key)
    elif isinstance(node, list) and node:
        node[draw(st.integers(0, len(node) - 1))] = draw(garbage)
    return yaml.safe_dump(data, allow_unicode=True).encode()


@pytest.fixture(scope="module")
def policy_copy():
    folder = Path(tempfile.mkdtemp(prefix="lifemon-fuzz-policy-"))
    shutil.copytree(
        DEFAULT_DIR, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py", "__pycache__")
    )
    yield folder
    shutil.rmtree(folder)


def test_a_mutated_policy_file_fails_with_file_key_and_fix(policy_copy: Path) -> None:
    @FILES
    @given(st.data())
    def check(data: st.DataObject) -> None:
        rel = data.draw(st.sampled_from(POLICY_FILES))
        original = (DEFAULT_DIR / rel).read_bytes()
        (policy_copy / rel).write_bytes(data.draw(mutated_yaml(yaml.safe_load(original))))
        try:
            load_policy(policy_copy)
        except PolicyError as e:
            assert e.file.endswith(".yaml") and e.fix and "Fix: " in str(e), str(e)
        finally:
            (policy_copy / rel).write_bytes(original)

    check()


def test_a_mutated_config_fails_with_file_key_and_fix(tmp_path_factory) -> None:
    path = tmp_path_factory.mktemp("config") / "lifemon.yaml"
    full = {
        "kafka": {"bootstrap": "localhost:9092", "client": {"client.id": "lifemon-1"}, "partitions": 3},
        "topics": {"access": "pfi.access"},
        "raw_sources": {
            "pgaudit": {"enabled": True, "log_line_prefix": "%m [%p] "},
            "sftp": {"enabled": True},
        },
        "clickhouse": {"database": "lifemon"},
        "event_time": {"max_ahead_s": 300},
        "max_record_bytes": 262144,
    }

    @FUZZ
    @given(st.data())
    def check(data: st.DataObject) -> None:
        path.write_bytes(data.draw(mutated_yaml(yaml.safe_load(yaml.safe_dump(full)))))
        try:
            load_config(path)
        except PolicyError as e:
            assert e.file == str(path) and e.fix, str(e)

    check()


@FUZZ
@given(st.sampled_from(["access", "consents"]), st.data())
def test_a_corrupt_replay_file_is_read_or_refused_with_its_name(stream: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        avro, jsonl = Path(d) / f"pfi.{stream}.avro", Path(d) / f"pfi.{stream}.jsonl"
        with avro.open("wb") as f:
            fastavro.writer(f, fastavro.parse_schema(load_schema(stream)), [], codec="null")
        body = avro.read_bytes()
        cut = data.draw(st.integers(0, len(body)))
        avro.write_bytes(body[:cut] + data.draw(st.binary(max_size=64)))
        values = data.draw(st.lists(records_of(stream), max_size=4))
        jsonl.write_bytes(b"\n".join(v for v, _ in values if v))
        for path in (avro, jsonl):
            try:
                records = list(read_raw(path))
            except ReplayFileError as e:
                assert str(path) in str(e) and path.suffix == ".avro"
                continue
            Decoder().decode(stream, raws(path.name, [(r.value, None) for r in records]))


@pytest.mark.parametrize(
    ("rel", "text", "says"),
    [
        ("retention.yaml", b"rules:\n  - \xff\xfe\n", "not UTF-8"),
        ("retention.yaml", b"? [a, b]\n: 1\n", "list or mapping used as a key"),
    ],
)
def test_policy_regressions_found_by_fuzzing(policy_copy: Path, rel: str, text: bytes, says: str) -> None:
    """Each raised UnicodeDecodeError or TypeError out of load_policy."""
    original = (policy_copy / rel).read_bytes()
    (policy_copy / rel).write_bytes(text)
    try:
        with pytest.raises(PolicyError, match=says):
            load_policy(policy_copy)
    finally:
        (policy_copy / rel).write_bytes(original)


@pytest.mark.parametrize("text", ["kafka: [client]\n", "kafka: {client: [password]}\n"])
def test_config_regressions_found_by_fuzzing(tmp_path: Path, text: str) -> None:
    """Each raised AttributeError or TypeError out of load_config."""
    path = tmp_path / "lifemon.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match="kafka"):
        load_config(path)


def test_a_truncated_avro_replay_file_names_itself(tmp_path: Path) -> None:
    path = tmp_path / "pfi.access.avro"
    path.write_bytes(b"Obj\x01garbage")
    with pytest.raises(ReplayFileError, match="pfi.access.avro"):
        list(read_raw(path))
