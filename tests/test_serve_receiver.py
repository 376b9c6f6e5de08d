"""The gateway's own Storage SCP (`pseudicom.receiver`) against real peers: dcmtk's storescu, pynetdicom as an SCU, and a
peer written here at the byte level (a TCP client that sends the PDUs pynetdicom encodes, cut where the test says).

Each test starts `pseudicom serve` on 127.0.0.1 on a free port and stops it; what it checks is what an upper layer can get
wrong: a PDU cut across TCP reads, a dataset in many PDUs, several presentation contexts and an unknown SOP class rejected
alone, our PDUs within the peer's maximum length, an A-ABORT (or a dropped connection) in the middle of an instance, an
A-ASSOCIATE-RJ for a calling AE title not allowed. No timing is asserted.
"""
import socket
import struct
import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom import pdu as pynetdicom_pdu
from pynetdicom.dimse_messages import C_ECHO_RQ, C_STORE_RQ
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dsutils import decode
from pynetdicom.pdu_primitives import A_ASSOCIATE, MaximumLengthNotification
from pynetdicom.presentation import build_context

from pseudicom.cli import main
from pseudicom.keys import Key
from pseudicom.synth import synthesize_ct_series

sys.path.insert(0, str(Path(__file__).parent))
from test_serve import DCMTK, _need_dcmtk, dcm_files, free_port, journal, running, serve_cmd  # noqa: E402

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


@pytest.fixture(scope="module")
def key_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("key") / "project.key"
    Key(b"pseudicom-receiver-test-key-0123456789").save(path)
    return path


def deid_of(files: list[Path], key_file: Path, out: Path) -> dict[str, bytes]:
    "What `pseudicom deid` writes for `files` (copied into a folder of their own): relative path -> bytes."
    src = out.parent / f"{out.name}-in"
    src.mkdir()
    for p in files:
        (src / p.name).write_bytes(p.read_bytes())
    assert main(["deid", str(src), str(out), "--recipe", "pseudonymize", "--key-file", str(key_file), "--quiet"]) == 0
    return dcm_files(out)


def associate_rq(contexts: list[tuple[int, str, list[str]]], calling: str = "SENDER", max_pdu: int = 16384) -> bytes:
    "An A-ASSOCIATE-RQ PDU as pynetdicom encodes it: (context ID, SOP class, transfer syntaxes) per context."
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.calling_ae_title, primitive.called_ae_title = calling, "PSEUDICOM"
    built = []
    for cid, abstract, syntaxes in contexts:
        cx = build_context(abstract, syntaxes)
        cx.context_id = cid
        built.append(cx)
    primitive.presentation_context_definition_list = built
    limit = MaximumLengthNotification()
    limit.maximum_length_received = max_pdu
    primitive.user_information = [limit]
    rq = pynetdicom_pdu.A_ASSOCIATE_RQ()
    rq.from_primitive(primitive)
    return rq.encode()


def message_pdus(primitive, context_id: int, max_pdu: int) -> list[bytes]:
    "A DIMSE request as the P-DATA-TF PDUs pynetdicom sends for it, none longer than `max_pdu`."
    msg = C_STORE_RQ() if isinstance(primitive, C_STORE) else C_ECHO_RQ()
    msg.primitive_to_message(primitive)
    out = []
    for p_data in msg.encode_msg(context_id, max_pdu):
        pdu = pynetdicom_pdu.P_DATA_TF()
        pdu.from_primitive(p_data)
        out.append(pdu.encode())
    return out


def store_primitive(path: Path, message_id: int = 1) -> C_STORE:
    "A C-STORE request for a file: its dataset's bytes as they are in the file."
    data = path.read_bytes()
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    primitive = C_STORE()
    primitive.MessageID, primitive.Priority = message_id, 2
    primitive.AffectedSOPClassUID, primitive.AffectedSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    primitive.DataSet = BytesIO(data[144 + struct.unpack("<I", data[140:144])[0]:])
    return primitive


class Peer:
    "A DICOM peer at the byte level: it sends what it is given, cut into the pieces it is told, and reads PDUs back."
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)   # each piece its own segment

    def send(self, data: bytes, cuts: tuple[int, ...] = ()) -> None:
        "Send `data`, cut at the offsets `cuts` (a pause after each piece, so that the server reads them apart)."
        start = 0
        for cut in (*cuts, len(data)):
            self.sock.sendall(data[start:cut])
            start = cut
            if cut < len(data):
                time.sleep(0.05)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def pdu(self) -> tuple[int, bytes]:
        "(type, body) of the next PDU from the server."
        pdu_type, n = struct.unpack(">BxI", self._exactly(6))
        return pdu_type, self._exactly(n)

    def response(self) -> tuple[pydicom.Dataset, list[int]]:
        "The next command set the server sends, and the length of each P-DATA-TF PDU that carried it."
        command, lengths = b"", []
        while True:
            pdu_type, body = self.pdu()
            assert pdu_type == 0x04, f"PDU type {pdu_type:#04x} where a P-DATA-TF was due: {body!r}"
            lengths.append(len(body))
            offset, last = 0, False
            while offset < len(body):
                length, _, control = struct.unpack_from(">IBB", body, offset)
                assert control & 1, "a command was due"
                command += body[offset + 6:offset + 4 + length]
                last = bool(control & 2)
                offset += 4 + length
            if last:
                return decode(BytesIO(command), True, True), lengths

    def closed_by_server(self) -> bool:
        "Whether the server closes the connection (reading nothing more than end of stream)."
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self) -> None:
        self.sock.close()


def associated(port: int, contexts: list[tuple[int, str, list[str]]], max_pdu: int = 16384, cuts: tuple[int, ...] = ()) -> Peer:
    peer = Peer(port)
    peer.send(associate_rq(contexts, max_pdu=max_pdu), cuts)
    pdu_type, body = peer.pdu()
    assert pdu_type == 0x02, f"A-ASSOCIATE-AC was due, not PDU type {pdu_type:#04x} {body!r}"
    return peer


def release(peer: Peer) -> None:
    peer.send(b"\x05\x00\x00\x00\x00\x04\x00\x00\x00\x00")
    assert peer.pdu() == (0x06, b"\0\0\0\0")
    peer.close()


def test_pdus_cut_across_tcp_reads_are_put_together(key_file, tmp_path):
    "The A-ASSOCIATE-RQ and a C-STORE arrive in pieces cut inside PDU headers, PDV headers and fragments: the output is deid's."
    one = synthesize_ct_series(tmp_path / "ct", 1, rows=64, columns=64)
    want = deid_of(one, key_file, tmp_path / "batch")
    dst, port = tmp_path / "out", free_port()
    with running(serve_cmd(dst, key_file, port), port, tmp_path / "serve.log"):
        peer = associated(port, [(1, CT, [EXPLICIT])], cuts=(1, 5, 40, 77))
        pdus = message_pdus(store_primitive(one[0]), 1, 16384)
        assert len(pdus) >= 2
        for pdu in pdus:   # inside the PDU header, the PDV header, the command or the dataset
            peer.send(pdu, cuts=tuple(c for c in (3, 8, 11, 30, len(pdu) // 2) if c < len(pdu)))
        rsp, _ = peer.response()
        assert (rsp.CommandField, rsp.Status, rsp.MessageIDBeingRespondedTo) == (0x8001, 0, 1)
        assert rsp.AffectedSOPInstanceUID == pydicom.dcmread(one[0], stop_before_pixels=True).SOPInstanceUID
        release(peer)
    assert dcm_files(dst) == want


def test_a_dataset_in_many_pdus_and_several_pdvs_in_one(key_file, tmp_path):
    """A 128x128 slice in P-DATA-TF PDUs of 4096 bytes, its command's PDV and the first dataset PDV in one PDU; then storescu
    limited to 4096-byte PDUs for the rest of the series: every output is deid's."""
    _need_dcmtk()
    series = synthesize_ct_series(tmp_path / "ct", 5, rows=128, columns=128)
    want = deid_of(series, key_file, tmp_path / "batch")
    dst, port = tmp_path / "out", free_port()
    with running(serve_cmd(dst, key_file, port), port, tmp_path / "serve.log"):
        peer = associated(port, [(1, CT, [EXPLICIT])])
        pdus = message_pdus(store_primitive(series[0]), 1, 4096)
        assert len(pdus) >= 9 and all(len(p) <= 4096 + 6 for p in pdus)
        two_in_one = struct.pack(">BxI", 0x04, len(pdus[0]) + len(pdus[1]) - 12) + pdus[0][6:] + pdus[1][6:]
        peer.send(b"".join([two_in_one, *pdus[2:]]))
        rsp, _ = peer.response()
        assert (rsp.CommandField, rsp.Status) == (0x8001, 0)
        release(peer)
        r = subprocess.run([str(DCMTK / "storescu"), "--max-send-pdu", "4096", "-aet", "SENDER", "-aec", "PSEUDICOM",
                            "127.0.0.1", str(port), *map(str, series[1:])], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
    assert dcm_files(dst) == want


def test_several_contexts_and_an_unknown_sop_class_rejected_alone(key_file, tmp_path):
    "A pynetdicom SCU proposes CT, MR, an unknown SOP class and CT in a syntax nobody offered: two rejected, each with its reason."
    files = [Path(get_testdata_file("CT_small.dcm")), Path(get_testdata_file("MR_small.dcm"))]
    want = deid_of(files, key_file, tmp_path / "batch")
    dst, port = tmp_path / "out", free_port()
    scu = AE("SENDER")
    scu.add_requested_context(CT, [EXPLICIT])
    scu.add_requested_context(MR, [EXPLICIT, IMPLICIT])
    scu.add_requested_context("1.2.3.4.5.6.7.8.9", [EXPLICIT])
    scu.add_requested_context(CT, ["1.2.3.4.5.6.7.8.9.1"])   # a transfer syntax that is no DICOM one
    with running(serve_cmd(dst, key_file, port), port, tmp_path / "serve.log"):
        assoc = scu.associate("127.0.0.1", port, ae_title="PSEUDICOM")
        assert assoc.is_established
        try:
            results = {(cx.abstract_syntax, cx.transfer_syntax[0]): cx.result for cx in assoc.rejected_contexts}
            accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
            statuses = [assoc.send_c_store(pydicom.dcmread(p)).Status for p in files]
        finally:
            assoc.release()
    assert accepted == {(CT, EXPLICIT), (MR, EXPLICIT)}
    assert results == {("1.2.3.4.5.6.7.8.9", EXPLICIT): 3, (CT, "1.2.3.4.5.6.7.8.9.1"): 4}
    assert statuses == [0, 0]
    assert dcm_files(dst) == want


def test_what_we_send_stays_within_the_peers_maximum_pdu_length(key_file, tmp_path):
    "A peer that takes PDUs of 40 bytes at most gets its C-ECHO and C-STORE answers cut into PDUs of 40 bytes at most."
    one = synthesize_ct_series(tmp_path / "ct", 1, rows=32, columns=32)
    dst, port = tmp_path / "out", free_port()
    with running(serve_cmd(dst, key_file, port), port, tmp_path / "serve.log"):
        peer = associated(port, [(1, "1.2.840.10008.1.1", [IMPLICIT]), (3, CT, [EXPLICIT])], max_pdu=40)
        echo = C_ECHO()
        echo.MessageID, echo.AffectedSOPClassUID = 7, "1.2.840.10008.1.1"
        for pdu in message_pdus(echo, 1, 0):
            peer.send(pdu)
        rsp, lengths = peer.response()
        assert (rsp.CommandField, rsp.Status, rsp.MessageIDBeingRespondedTo) == (0x8030, 0, 7)
        assert len(lengths) > 1 and max(lengths) <= 40, lengths
        for pdu in message_pdus(store_primitive(one[0], message_id=8), 3, 0):
            peer.send(pdu)
        rsp, lengths = peer.response()
        assert (rsp.CommandField, rsp.Status, rsp.MessageIDBeingRespondedTo) == (0x8001, 0, 8)
        assert len(lengths) > 3 and max(lengths) <= 40, lengths
        release(peer)
    assert len(dcm_files(dst)) == 1


def test_an_abort_or_a_dropped_connection_mid_instance_leaves_nothing(key_file, tmp_path):
    "Half an instance, then A-ABORT (or the connection dropped): nothing spooled, journalled or written; sent whole later, it is."
    _need_dcmtk()
    one = synthesize_ct_series(tmp_path / "ct", 1, rows=256, columns=256)
    want = deid_of(one, key_file, tmp_path / "batch")
    dst, port = tmp_path / "out", free_port()
    spool = dst.parent / f"{dst.name}.spool"
    with running(serve_cmd(dst, key_file, port), port, tmp_path / "serve.log"):
        for ending in ("abort", "drop"):
            peer = associated(port, [(1, CT, [EXPLICIT])])
            pdus = message_pdus(store_primitive(one[0]), 1, 16384)
            assert len(pdus) > 4
            for pdu in pdus[:len(pdus) // 2]:
                peer.send(pdu)
            if ending == "abort":
                peer.send(b"\x07\x00\x00\x00\x00\x04\x00\x00\x00\x00")   # A-ABORT, by the service user
                assert peer.closed_by_server()
            peer.close()
            time.sleep(0.5)   # (the server has the A-ABORT or the end of the stream; if it kept anything, it is on disk by now)
            assert journal(dst) == [] and not dcm_files(dst) and not list(spool.glob("*.dcm")), ending
        sent = subprocess.run([str(DCMTK / "storescu"), "-aet", "SENDER", "-aec", "PSEUDICOM", "127.0.0.1", str(port), str(one[0])],
                              capture_output=True, text=True, timeout=60)
        assert sent.returncode == 0, sent.stderr
    assert dcm_files(dst) == want
    assert [r["status"] for r in journal(dst)] == ["written"]
    stopped = (tmp_path / "serve.log").read_text().split("stopped;")[-1]
    assert " 1 received," in stopped, stopped   # the gateway was handed the whole instance once, and neither half


def test_a_calling_ae_not_allowed_gets_an_associate_rj_and_nothing_more(key_file, tmp_path):
    "A-ASSOCIATE-RJ: permanent (1), by the service user (1), calling AE title not recognised (3); then the server closes."
    dst, port = tmp_path / "out", free_port()
    with running(serve_cmd(dst, key_file, port, "--allow", "SCANNER"), port, tmp_path / "serve.log"):
        peer = Peer(port)
        peer.send(associate_rq([(1, CT, [EXPLICIT])], calling="STRANGER"))
        assert peer.pdu() == (0x03, b"\x00\x01\x01\x03")
        peer.close()
        allowed = Peer(port)
        allowed.send(associate_rq([(1, CT, [EXPLICIT])], calling="SCANNER"))
        assert allowed.pdu()[0] == 0x02
        release(allowed)
    assert "rejected an association from STRANGER" in (tmp_path / "serve.log").read_text()


def test_both_receivers_give_the_same_outputs_and_journal(key_file, tmp_path, monkeypatch):
    "The same slices into `serve` with pseudicom's receiver and with pynetdicom's (PSEUDICOM_RECEIVER): the same files, same records."
    _need_dcmtk()
    series = synthesize_ct_series(tmp_path / "ct", 6, rows=64, columns=64)
    got = {}
    for receiver in ("python", "pynetdicom"):
        monkeypatch.setenv("PSEUDICOM_RECEIVER", receiver)   # (the server process inherits it)
        dst, port = tmp_path / receiver / "out", free_port()
        dst.parent.mkdir()
        with running(serve_cmd(dst, key_file, port), port, tmp_path / f"{receiver}.log"):
            r = subprocess.run([str(DCMTK / "storescu"), "-aet", "SENDER", "-aec", "PSEUDICOM", "127.0.0.1", str(port),
                                *map(str, series)], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stderr
        got[receiver] = (dcm_files(dst), sorted((r["digest"], r["status"], r["output"]) for r in journal(dst)))
    assert len(got["python"][0]) == 6
    assert got["python"] == got["pynetdicom"]
