"""Data access: mirror lookup, checksum verification, official-URL download, .deb extraction."""

from __future__ import annotations

import io
import shutil
import tarfile
import urllib.error
from pathlib import Path

import pytest

from hybrid_retrieval import sources
from hybrid_retrieval.errors import PipelineError

MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
XQUAD_DE = "xquad-r/de.json"


def test_every_known_file_has_an_official_source() -> None:
    known = sources.checksums()
    assert len(known) > 300
    for relpath in known:
        if relpath.endswith(("COPYRIGHT", "LICENSE")):
            continue
        src = sources.origin(relpath)
        assert src.url.startswith("https://"), relpath
    assert sources.origin("squad-v1.1/train-v1.1.json").url == \
        "https://rajpurkar.github.io/SQuAD-explorer/dataset/train-v1.1.json"
    deb = sources.origin("debian/faq/pt/kernel.pt.html")
    assert deb.url.endswith("debian-faq-pt_11.1_all.deb")
    assert deb.deb_member == "./usr/share/doc/debian/FAQ/pt/kernel.pt.html"
    handbook = sources.origin("debian/handbook/vi-VN/apt.html")
    assert handbook.url.endswith("/pool/main/d/debian-handbook/debian-handbook_11.20220922_all.deb")
    assert handbook.deb_member == "./usr/share/doc/debian-handbook/html/vi-VN/apt.html"
    guide = sources.origin("debian/installation-guide/el/ch06s03.html")
    assert guide.url.endswith("/pool/main/i/installation-guide/"
                              "installation-guide-amd64_20230508+deb12u1_all.deb")
    assert guide.deb_member == "./usr/share/doc/installation-guide-amd64/el/ch06s03.html"
    assert guide.deb_sha256 == sources.DEBIAN_PACKAGES[sources.INSTALL_GUIDE_DEB]


def test_locate_returns_the_verified_mirror_copy(tmp_path: Path) -> None:
    path = sources.locate(XQUAD_DE, MIRROR, tmp_path / "dl")
    assert path == MIRROR / XQUAD_DE
    assert not (tmp_path / "dl").exists()


def test_checksum_mismatch_names_file_and_expected_hash(tmp_path: Path) -> None:
    bad = tmp_path / "mirror" / XQUAD_DE
    bad.parent.mkdir(parents=True)
    bad.write_bytes((MIRROR / XQUAD_DE).read_bytes()[:-10])
    with pytest.raises(PipelineError, match="checksum mismatch") as err:
        sources.locate(XQUAD_DE, tmp_path / "mirror", tmp_path / "dl")
    assert str(bad) in str(err.value)
    assert sources.checksums()[XQUAD_DE] in str(err.value)


def test_missing_file_and_failed_download_names_mirror_and_url(tmp_path, monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(sources.urllib.request, "urlopen", offline)
    with pytest.raises(PipelineError) as err:
        sources.locate(XQUAD_DE, tmp_path / "mirror", tmp_path / "dl")
    message = str(err.value)
    assert XQUAD_DE in message and str((tmp_path / "mirror").resolve()) in message
    assert sources.origin(XQUAD_DE).url in message
    assert not (tmp_path / "dl" / XQUAD_DE).exists()


def test_download_from_official_url_is_verified(tmp_path, monkeypatch) -> None:
    served = tmp_path / "served.json"
    shutil.copy(MIRROR / XQUAD_DE, served)
    monkeypatch.setattr(sources, "origin", lambda relpath: sources.Origin(served.as_uri()))
    path = sources.locate(XQUAD_DE, tmp_path / "empty-mirror", tmp_path / "dl")
    assert path == tmp_path / "dl" / XQUAD_DE
    assert sources.sha256_file(path) == sources.checksums()[XQUAD_DE]

    # A corrupt download is rejected and removed, so the next run does not trust it.
    served.write_bytes(b"{}")
    path.unlink()
    with pytest.raises(PipelineError, match="checksum mismatch"):
        sources.locate(XQUAD_DE, tmp_path / "empty-mirror", tmp_path / "dl")
    assert not path.exists()


def _make_deb(members: dict[str, bytes]) -> bytes:
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    out = b"!<arch>\n"
    for name, payload in (("debian-binary", b"2.0\n"), ("data.tar.xz", data.getvalue())):
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(payload):<10}`\n"
        out += header.encode() + payload + (b"\n" if len(payload) % 2 else b"")
    return out


def test_extract_deb_member() -> None:
    deb = _make_deb({"./usr/share/doc/a.html": b"<p>hello</p>", "./usr/b.txt": b"odd"})
    assert sources.extract_deb_member(deb, "./usr/share/doc/a.html") == b"<p>hello</p>"
    assert sources.extract_deb_member(deb, "./usr/b.txt") == b"odd"
    with pytest.raises(KeyError):
        sources.extract_deb_member(deb, "./missing")
    with pytest.raises(ValueError, match="not a Debian package"):
        sources.extract_deb_member(b"PK\x03\x04", "./x")


def test_unknown_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="unknown data file"):
        sources.locate("xquad-r/xx.json", MIRROR, tmp_path)
