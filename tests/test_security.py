"Security of the key and the crosswalk, and refusal of unsafe destinations (issue 7)."
import os
from pathlib import Path


from pseudicom.cli import main
from pseudicom.keys import Crosswalk, Key


def _all_bytes(*roots: Path) -> list[tuple[Path, bytes]]:
    out = []
    for root in roots:
        if root.is_file():
            out.append((root, root.read_bytes()))
        elif root.is_dir():
            out += [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]
    return out


def test_key_never_written_anywhere(synth_set, tmp_path, capsys):
    src, _ = synth_set
    keyfile = tmp_path / "keys" / "k.key"
    keyfile.parent.mkdir()
    assert main(["keygen", str(keyfile)]) == 0
    secret_hex = keyfile.read_text().strip()
    secret = bytes.fromhex(secret_hex)
    code = main(["deid", str(src), str(tmp_path / "out"), "--recipe", "pseudonymize", "--key-file", str(keyfile),
                 "--crosswalk", str(tmp_path / "cw.csv"), "--burned-in", "detect"])
    assert code == 0
    captured = capsys.readouterr()
    files = _all_bytes(tmp_path / "out", tmp_path / "out.report.json", tmp_path / "out.audit.jsonl", tmp_path / "cw.csv")
    assert len(files) > 5
    for path, data in files:
        for needle in (secret, secret_hex.encode(), secret_hex.upper().encode(), secret_hex[:16].encode()):
            assert needle not in data, f"key material in {path}"
    assert secret_hex[:16] not in captured.out + captured.err
    assert Key(secret).fingerprint in captured.out  # the fingerprint, not the key, identifies it


def test_key_file_permissions_and_length(synth_set, tmp_path, capsys):
    src, _ = synth_set
    loose = tmp_path / "loose.key"
    loose.write_text("ab" * 32)
    os.chmod(loose, 0o644)
    assert main(["deid", str(src), str(tmp_path / "o1"), "--recipe", "pseudonymize", "--key-file", str(loose)]) == 2
    assert "readable by every user" in capsys.readouterr().err
    for text in ("", "abcd"):
        short = tmp_path / f"short{len(text)}.key"
        short.write_text(text)
        os.chmod(short, 0o600)
        assert main(["deid", str(src), str(tmp_path / "o2"), "--recipe", "pseudonymize", "--key-file", str(short)]) == 2
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_unsafe_destinations_refused(synth_set, tmp_path, capsys):
    src, _ = synth_set
    inside = tmp_path / "in"
    (inside / "a").mkdir(parents=True)
    assert main(["deid", str(src), str(src / "out"), "--recipe", "basic"]) == 2
    assert "inside the input" in capsys.readouterr().err and not (src / "out").exists()
    assert main(["deid", str(inside / "a"), str(inside), "--recipe", "basic"]) == 2
    key1, key2 = tmp_path / "k1.key", tmp_path / "k2.key"
    main(["keygen", str(key1)])
    main(["keygen", str(key2)])
    assert main(["deid", str(src), str(tmp_path / "o"), "--recipe", "pseudonymize", "--key-file", str(key1), "--quiet"]) in (0, 1)
    capsys.readouterr()
    assert main(["deid", str(src), str(tmp_path / "o"), "--recipe", "pseudonymize", "--key-file", str(key2), "--quiet"]) == 2
    assert "different recipe or key" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "x.txt").write_text("x")
    assert main(["deid", str(src), str(foreign), "--recipe", "basic"]) == 2
    assert main(["deid", str(src), str(tmp_path / "o3"), "--recipe", "pseudonymize", "--key-file", str(key1),
                 "--crosswalk", str(tmp_path / "o3" / "cw.csv")]) == 2


def test_encrypted_crosswalk_round_trip(tmp_path):
    cw = Crosswalk()
    cw.add("Patient", "PID-0001", "X3VV677WCN")
    p = cw.write(tmp_path / "cw.enc", output_root=tmp_path / "out", passphrase="a long enough passphrase")
    assert b"PID-0001" not in p.read_bytes() and oct(p.stat().st_mode & 0o777) == "0o600"
    assert Crosswalk.read(p, passphrase="a long enough passphrase").lookup("X3VV677WCN") == [("Patient", "PID-0001")]
