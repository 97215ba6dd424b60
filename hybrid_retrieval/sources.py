"""The one place that knows where the raw data lives: mirror paths, official URLs and checksums.

Every raw file is named by its path relative to the data mirror (``params.yaml: data.mirror``,
``../shared/data`` by default), e.g. ``squad-v1.1/train-v1.1.json``. :func:`locate` returns the
mirror copy, or downloads the official file into ``data.download_dir`` when the mirror lacks it,
and verifies the SHA-256 from ``checksums.json`` (shipped with this package) either way.

The Debian documents are published inside Debian packages, so their official source is the
``.deb`` in Debian's archive (itself checked against the archive's SHA-256) and a member path
inside it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .config import param
from .errors import PipelineError
from .io import atomic_path
from .progress import progress_bar

CHECKSUMS_FILE = Path(__file__).with_name("checksums.json")

LAREQA_REPO = "https://raw.githubusercontent.com/google-research-datasets/lareqa"
LAREQA_XQUAD_COMMIT = "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c"
# MLQA-R was removed from the LAReQA repository; it is still in the history at this commit.
LAREQA_MLQA_COMMIT = "354d67d1cd066854cdfbf5ad0e6105528976141d"
SQUAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset"
DEBIAN_POOL = "https://deb.debian.org/debian/pool/main/d"
DEBIAN_POOL_I = "https://deb.debian.org/debian/pool/main/i"
NTREX_REPO = "https://raw.githubusercontent.com/MicrosoftTranslator/NTREX"
NTREX_COMMIT = "8561f6a"
HANDBOOK_DEB = "debian-handbook_11.20220922_all.deb"
INSTALL_GUIDE_DEB = "installation-guide-amd64_20230508+deb12u1_all.deb"

# Debian packages (bookworm) holding the documentation: package -> SHA-256 of the .deb.
DEBIAN_PACKAGES: dict[str, str] = {
    "debian-faq_11.1_all.deb": "427426e0cfa6888622fc1d72631071cb4b5a1f86ccde722e7820bcef284de5d0",
    "debian-faq-de_11.1_all.deb": "e9a8d8234f4b182660d521f80f50cea87f797b4541005a3d64fab7777766f6de",
    "debian-faq-fr_11.1_all.deb": "e83cbcc28106fc35f6665a6b0c54c2bd66db481de409764ce35b715baca510df",
    "debian-faq-it_11.1_all.deb": "6c3c79c386f3b393e5b87e7be6cc8230ff88975f176aa20d07d5bf68d5d95bf0",
    "debian-faq-ja_11.1_all.deb": "7e2a2f200a963e41dead4dd8645e0dd6550e2eda4cd88041b8e880046ca924a2",
    "debian-faq-ko_11.1_all.deb": "1e010227c0e7497b836e195beedcda60f3e9b8856f19f211cbbdc5e91b4a5d7a",
    "debian-faq-nl_11.1_all.deb": "133abcbedaafd65baa8c258551c2c536e8b391426bc16b85b1af4bbe7403e624",
    "debian-faq-pt_11.1_all.deb": "ec3c25671b78da0359611fb904976d5a62f4054953a97a3db0f42883b21d45ea",
    "debian-faq-ru_11.1_all.deb": "aaaae7a409c5cf5f5b8c26991f6ef484297e0cd2dee74c8d675cfa6613bce541",
    "debian-faq-zh-cn_11.1_all.deb": "3545356b1aa04d87e91dd15e8406210cf5b4f476662e597897bcb42234591758",
    "debian-reference-en_2.100_all.deb": "9f31d3a17df505de09689ca255512ea58c1fc47c59bb1b0c7bf1c23362e9743f",
    "debian-reference-de_2.100_all.deb": "3b0ce65fd63e75ddf8eb07ca36293425135080e690a07e06a6ac8bc8040ef0aa",
    "debian-reference-es_2.100_all.deb": "a59b68c96f83d3cf29a476c847aee38364764603ea62eee592791e0a843a269e",
    "debian-reference-fr_2.100_all.deb": "01424cba9bfa2e13166da22d3d692d33a22ec7d8ef935ec81fd8802746087f65",
    "debian-reference-id_2.100_all.deb": "3848a0593476c4f8429698c93eb0e367320d8bd78147304666eff3a82a5df3e2",
    "debian-reference-it_2.100_all.deb": "7894062a5e9203a57ec6cb8d6a47d5ffb58c41dc004766522f1b4d78b2a8e0c6",
    "debian-reference-ja_2.100_all.deb": "f67140e0b994409413bd5fcc8dfcce832445c99d724401f0275fa238daf30325",
    "debian-reference-pt_2.100_all.deb": "c9c5d30a8608485bad60f7bd7ce6c755af4a129c2b30511ee733b90ac17e7dfa",
    "debian-reference-zh-cn_2.100_all.deb": "6d2d8d9a646397e28b04cdff23d2e4374101ebf9be348e35961af62c8a2d0977",
    HANDBOOK_DEB: "3d5dbeac1f1afc9c094eab9d0f701f6ecff99c4927d5a4794cf6c85678134faa",
    INSTALL_GUIDE_DEB: "812c43e1dc906daf671e3efe953dc023205c238e5bd5a3021ce4ca142793573a",
}


@dataclass(frozen=True)
class Origin:
    """Where a mirror file officially comes from: a URL, and for a .deb the member inside it."""

    url: str
    deb_member: str | None = None
    deb_sha256: str | None = None

    def describe(self) -> str:
        return f"{self.url} (member {self.deb_member})" if self.deb_member else self.url


@lru_cache(maxsize=1)
def checksums() -> dict[str, str]:
    """Relative mirror path -> expected SHA-256, for every raw file the pipeline may read."""
    return json.loads(CHECKSUMS_FILE.read_text(encoding="utf-8"))


def list_files(prefix: str, suffix: str = "") -> list[str]:
    """Known raw files under ``prefix`` (e.g. ``debian/faq/de/``) ending in ``suffix``, sorted."""
    return sorted(p for p in checksums() if p.startswith(prefix) and p.endswith(suffix))


def origin(relpath: str) -> Origin:
    """The official source of a mirror file; :class:`PipelineError` if the path is unknown."""
    parts = relpath.split("/")
    name = parts[-1]
    if parts[0] == "squad-v1.1":
        return Origin(f"{SQUAD_URL}/{name}")
    if parts[0] == "xquad-r":
        return Origin(f"{LAREQA_REPO}/{LAREQA_XQUAD_COMMIT}/xquad-r/{name}")
    if parts[0] == "mlqa-r":
        return Origin(f"{LAREQA_REPO}/{LAREQA_MLQA_COMMIT}/mlqa-r/{name}")
    if parts[:2] == ["debian", "faq"] and len(parts) == 4:
        lang = parts[2]
        deb = "debian-faq_11.1_all.deb" if lang == "en" else f"debian-faq-{lang}_11.1_all.deb"
        member = f"./usr/share/doc/debian/FAQ/{name}" if lang == "en" else \
            f"./usr/share/doc/debian/FAQ/{lang}/{name}"
        return Origin(f"{DEBIAN_POOL}/debian-faq/{deb}", member, DEBIAN_PACKAGES[deb])
    if parts[:2] == ["debian", "reference"] and len(parts) == 4:
        deb = f"debian-reference-{parts[2]}_2.100_all.deb"
        return Origin(f"{DEBIAN_POOL}/debian-reference/{deb}",
                      f"./usr/share/debian-reference/{name}", DEBIAN_PACKAGES[deb])
    if parts[:2] == ["debian", "handbook"] and len(parts) == 4:
        return Origin(f"{DEBIAN_POOL}/debian-handbook/{HANDBOOK_DEB}",
                      f"./usr/share/doc/debian-handbook/html/{parts[2]}/{name}",
                      DEBIAN_PACKAGES[HANDBOOK_DEB])
    if parts[:2] == ["debian", "installation-guide"] and len(parts) == 4:
        return Origin(f"{DEBIAN_POOL_I}/installation-guide/{INSTALL_GUIDE_DEB}",
                      f"./usr/share/doc/installation-guide-amd64/{parts[2]}/{name}",
                      DEBIAN_PACKAGES[INSTALL_GUIDE_DEB])
    if parts[0] == "ntrex-128" and len(parts) == 2:
        return Origin(f"{NTREX_REPO}/{NTREX_COMMIT}/NTREX-128/{name}")
    raise PipelineError(f"{relpath}: no official source is known for this data file")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, relpath: str, expected: str) -> Path:
    actual = sha256_file(path)
    if actual != expected:
        raise PipelineError(f"{path}: checksum mismatch for '{relpath}': sha256 is {actual}, "
                            f"expected {expected} (a corrupt or different version of the file)")
    return path


@dataclass(frozen=True)
class DataConfig:
    """``params.yaml: data``: where :func:`locate` finds the raw files."""

    mirror: str = param(help="local mirror of the official files (see README 'Data')")
    download_dir: str = param(help="official downloads land here when the mirror lacks a file")


def locate(relpath: str, mirror: str | os.PathLike, download_dir: str | os.PathLike,
           *, allow_download: bool = True) -> Path:
    """Return a verified local copy of the raw file ``relpath``.

    Looks in ``mirror`` first, then in ``download_dir``, then downloads the official file into
    ``download_dir``. The SHA-256 is checked in every case. Raises :class:`PipelineError`
    naming the file, the mirror path and the URL when no verified copy can be had.
    """
    try:
        expected = checksums()[relpath]
    except KeyError:
        raise PipelineError(f"{relpath}: unknown data file (not in {CHECKSUMS_FILE.name})") from None
    for base in (Path(mirror), Path(download_dir)):
        candidate = base / relpath
        if candidate.is_file():
            return _verify(candidate, relpath, expected)
    src = origin(relpath)
    target = Path(download_dir) / relpath
    if not allow_download:
        raise PipelineError(f"{relpath}: not in the mirror {Path(mirror).resolve()} and downloads "
                            f"are off; get it from {src.describe()}")
    try:
        _download(src, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PipelineError(
            f"{relpath}: not in the mirror {Path(mirror).resolve()} (params data.mirror) and the "
            f"download from {src.describe()} failed: {exc}") from None
    try:
        return _verify(target, relpath, expected)
    except PipelineError:
        target.unlink()
        raise


def _fetch_url(url: str, target: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as resp, atomic_path(target) as tmp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with open(tmp, "wb") as out, progress_bar(total, unit="B", unit_scale=True,
                                                  desc=f"download {target.name}") as bar:
            while block := resp.read(1 << 20):
                out.write(block)
                bar.update(len(block))


def _download(src: Origin, target: Path) -> None:
    if src.deb_member is None:
        _fetch_url(src.url, target)
        return
    deb = target.parent / "_debs" / src.url.rsplit("/", 1)[1]
    if not deb.is_file() or sha256_file(deb) != src.deb_sha256:
        _fetch_url(src.url, deb)
    if sha256_file(deb) != src.deb_sha256:
        raise ValueError(f"{deb}: checksum mismatch, expected sha256 {src.deb_sha256}")
    with atomic_path(target) as tmp:
        tmp.write_bytes(extract_deb_member(deb.read_bytes(), src.deb_member))


def extract_deb_member(deb_bytes: bytes, member: str) -> bytes:
    """Read one file out of a Debian package (an ``ar`` archive holding ``data.tar.*``)."""
    if not deb_bytes.startswith(b"!<arch>\n"):
        raise ValueError("not a Debian package (no ar header)")
    pos = 8
    while pos + 60 <= len(deb_bytes):
        header = deb_bytes[pos:pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = deb_bytes[pos + 60:pos + 60 + size]
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                extracted = tar.extractfile(member)
                if extracted is None:
                    raise ValueError(f"{member} is not a regular file in the package")
                return extracted.read()
        pos += 60 + size + (size % 2)
    raise ValueError("no data.tar member in the package")


def write_checksums(mirror: str | os.PathLike) -> dict[str, str]:
    """Maintainers only: recompute ``checksums.json`` from a trusted mirror."""
    root = Path(mirror)
    sums = {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "README.md"}
    CHECKSUMS_FILE.write_text(json.dumps(sums, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    checksums.cache_clear()
    return sums


if __name__ == "__main__":
    import sys
    print(f"{len(write_checksums(sys.argv[1]))} checksums written to {CHECKSUMS_FILE}")
