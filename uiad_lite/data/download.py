"""Fetch, verify and unpack the real datasets (and build the synthetic one).

`download(name, root)` does, for a dataset whose licence allows a direct download:

1. fetch each archive with `pooch.retrieve` and a resumable HTTP downloader: bytes go to
   ``<file>.part`` and an interrupted transfer continues with an HTTP ``Range`` request (on the
   next attempt, or the next call);
2. check the archive's SHA-256 (pooch); a mismatch deletes the download and raises a ValueError
   naming the URL and both hashes, so no half-written or wrong file is left behind;
3. extract tar / zip archives (refusing members that would land outside the target folder) and
   leave a marker so a re-run does not extract twice;
4. check the layout by indexing every category with the dataset's loader and reading one sample.

Datasets behind a licence form (MVTec AD, LOCO, 3D-AD) or shared through cloud drives print
step-by-step instructions instead (`ManualDownloadRequired`); an archive placed in the root by
hand is then verified and extracted like a downloaded one. `verify(name, root)` re-runs the checks
without touching the network.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from uiad_lite.data.registry import Archive, DatasetInfo, catalogue, info

__all__ = ["ManualDownloadRequired", "catalogue", "download", "format_report", "verify"]

EXTRACTED_MARKER = ".uiad_extracted_{filename}.json"


class ManualDownloadRequired(RuntimeError):
    """The dataset cannot be fetched automatically; the message says how to get it."""


@dataclass
class ResumableDownloader:
    """A pooch downloader that keeps partial bytes in ``<archive>.part`` and resumes with HTTP Range.

    `retries` extra attempts are made within one call when the connection drops; between calls
    the ``.part`` file survives, so a later call resumes as well.
    """

    part_file: Path
    retries: int = 3
    chunk_size: int = 1 << 16  # bytes of a failed read are lost, so keep reads small
    timeout: float = 60.0
    wait: float = 0.5

    def __call__(
        self, url: str, output_file: Any, pooch: Any = None, check_only: bool = False
    ) -> bool | None:
        import requests

        if check_only:
            response = requests.head(url, allow_redirects=True, timeout=self.timeout)
            return response.status_code == 200
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                self._fetch_into_part(url, requests)
                break
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
                IncompleteDownload,
            ) as error:
                last_error = error
                if attempt < self.retries:
                    time.sleep(self.wait * (attempt + 1))
        else:
            raise IncompleteDownload(
                f"download of {url} interrupted {self.retries + 1} time(s); "
                f"{self.part_file.stat().st_size} bytes kept in {self.part_file}, "
                f"the next call resumes from there ({last_error})"
            )
        self._hand_over(output_file)
        return None

    def _fetch_into_part(self, url: str, requests: Any) -> None:
        have = self.part_file.stat().st_size if self.part_file.exists() else 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        with requests.get(url, headers=headers, stream=True, timeout=self.timeout) as response:
            if response.status_code == 416:  # nothing left to send: the part file is stale, start over
                self.part_file.unlink()
                raise IncompleteDownload(f"server refused the resume range for {url}")
            response.raise_for_status()
            resumed = response.status_code == 206
            expected = response.headers.get("Content-Length")
            expected_total = (have if resumed else 0) + int(expected) if expected is not None else None
            with self.part_file.open("ab" if resumed else "wb") as handle:
                for chunk in response.iter_content(chunk_size=self.chunk_size):
                    handle.write(chunk)
        size = self.part_file.stat().st_size
        if expected_total is not None and size != expected_total:
            raise IncompleteDownload(f"{url}: received {size} of {expected_total} bytes")

    def _hand_over(self, output_file: Any) -> None:
        """Copy the finished part file into pooch's temporary file (pooch then checks and moves it)."""
        if isinstance(output_file, (str, Path)):
            Path(self.part_file).replace(output_file)
            return
        with self.part_file.open("rb") as source:
            while block := source.read(self.chunk_size):
                output_file.write(block)
        self.part_file.unlink()


class IncompleteDownload(IOError):
    """The server closed the connection before sending the whole file."""


def sha256_of(path: Path, block: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_archive(archive: Archive, folder: Path, retries: int = 3) -> Path:
    """Download one archive into `folder` (resuming, checksum-verified); returns its path."""
    import pooch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / archive.filename
    downloader = ResumableDownloader(folder / f"{archive.filename}.part", retries=retries)
    known = f"sha256:{archive.sha256}" if archive.sha256 else None
    try:
        path = pooch.retrieve(
            archive.url,
            known_hash=known,
            fname=archive.filename,
            path=folder,
            downloader=downloader,
            progressbar=False,
        )
    except ValueError as error:  # pooch's hash mismatch: its temporary file is already deleted
        downloader.part_file.unlink(missing_ok=True)
        target.unlink(missing_ok=True)
        raise ValueError(
            f"SHA-256 mismatch for {archive.url}: expected {archive.sha256}; the download was deleted "
            f"({error})"
        ) from error
    return Path(path)


def check_archive(archive: Archive, path: Path) -> dict[str, Any]:
    actual = sha256_of(path)
    return {
        "filename": archive.filename,
        "present": True,
        "sha256_expected": archive.sha256,
        "sha256_actual": actual,
        "ok": archive.sha256 is None or actual == archive.sha256,
    }


def safe_extract(path: Path, destination: Path) -> None:
    """Extract a .tar(.gz/.xz/.bz2) or .zip archive into `destination`; no member may escape it."""
    destination = destination.resolve()
    destination.mkdir(parents=True, exist_ok=True)

    def inside(member: str) -> bool:
        target = (destination / member).resolve()
        return target == destination or destination in target.parents

    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            bad = [name for name in archive.namelist() if not inside(name)]
            if bad:
                raise ValueError(f"{path}: refusing to extract members outside {destination}: {bad[:3]}")
            archive.extractall(destination)
        return
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as archive:
            members = archive.getmembers()
            bad = [
                m.name
                for m in members
                if not inside(m.name) or m.issym() or m.islnk() and not inside(m.linkname)
            ]
            if bad:
                raise ValueError(f"{path}: refusing to extract members outside {destination}: {bad[:3]}")
            if hasattr(tarfile, "data_filter"):
                archive.extractall(destination, filter="data")
            else:  # Python < 3.11.4: members were checked above
                archive.extractall(destination)
        return
    raise ValueError(f"{path} is neither a zip nor a tar archive")


def extract_once(archive: Archive, path: Path, root: Path) -> None:
    marker = root / EXTRACTED_MARKER.format(filename=archive.filename)
    digest = sha256_of(path) if archive.sha256 is None else archive.sha256
    if marker.is_file() and json.loads(marker.read_text()).get("sha256") == digest:
        return
    safe_extract(path, root / archive.extract_to)
    marker.write_text(json.dumps({"archive": archive.filename, "sha256": digest}, indent=2) + "\n")


def check_layout(name: str, root: Path, read_one: bool = True) -> dict[str, Any]:
    """Index every category found with the dataset's loader (and read one test sample of each)."""
    from uiad_lite.data.loading import categories, dataset_root, load

    result: dict[str, Any] = {"ok": False, "categories": {}, "error": None}
    try:
        folder = dataset_root(name, root)
        found = categories(name, folder)
    except (FileNotFoundError, ValueError) as error:
        result["error"] = str(error)
        return result
    if not found:
        result["error"] = f"no category folders found under {folder}"
        return result
    expected = set(info(name).categories)
    for category in found:
        entry: dict[str, Any] = {"error": None}
        try:
            splits = load(name, root=folder, category=category, size="full")
            entry.update(
                train=len(splits.train),
                test=len(splits.test),
                validation=len(splits.validation),
                anomalous=int(sum(splits.test.labels)),
            )
            if read_one:
                splits.test[0]
        except (FileNotFoundError, ValueError) as error:
            entry["error"] = str(error)
        result["categories"][category] = entry
    result["missing_categories"] = sorted(expected - set(found))
    result["ok"] = all(entry["error"] is None for entry in result["categories"].values())
    result["root"] = str(folder)
    return result


def instructions(entry: DatasetInfo, root: Path) -> str:
    text = entry.instructions or f"Download {entry.title} from {entry.homepage} and extract it into {root}."
    filename = entry.archives[0].filename if entry.archives else ""
    return text.format(
        name=entry.name, title=entry.title, homepage=entry.homepage, root=root, filename=filename
    )


def default_root(name: str) -> Path:
    import os

    if not os.environ.get("UIAD_DATA"):
        raise ValueError(
            f"no folder given for {name}: pass --root DIR (root=... in Python) or set the UIAD_DATA "
            "environment variable"
        )
    return Path(os.environ["UIAD_DATA"]).expanduser() / name


def download(
    name: str,
    root: str | Path | None = None,
    *,
    retries: int = 3,
    check: bool = True,
    seed: int = 0,
    size: str = "quick",
) -> Path:
    """Get dataset `name` into `root` (default `$UIAD_DATA/<name>`) and check it; returns the root.

    Raises ManualDownloadRequired (with instructions) when the data must be fetched by hand,
    ValueError on a checksum mismatch or a layout that the loader cannot read.
    """
    entry = info(name)
    if entry.method == "generated":
        from uiad_lite.data import synthetic

        return synthetic.generate(root, size=size, seed=seed)
    root = Path(root).expanduser() if root is not None else default_root(name)
    if entry.method == "direct":
        root.mkdir(parents=True, exist_ok=True)
        for archive in entry.archives:
            path = fetch_archive(archive, root, retries=retries)
            extract_once(archive, path, root)
    else:
        placed = [archive for archive in entry.archives if (root / archive.filename).is_file()]
        if not placed:
            if check and entry.loader and check_layout(name, root, read_one=False)["ok"]:
                return root
            raise ManualDownloadRequired(instructions(entry, root))
        for archive in placed:
            report = check_archive(archive, root / archive.filename)
            if not report["ok"]:
                raise ValueError(
                    f"SHA-256 mismatch for {root / archive.filename}: expected "
                    f"{archive.sha256}, found {report['sha256_actual']}"
                )
            extract_once(archive, root / archive.filename, root)
    if check and entry.loader:
        layout = check_layout(name, root)
        if not layout["ok"]:
            raise ValueError(f"{name} in {root} does not have the expected layout:\n{format_layout(layout)}")
    return root


def verify(name: str, root: str | Path | None = None, read_one: bool = True) -> dict[str, Any]:
    """Offline check of archives present in `root` (SHA-256) and of the folder layout."""
    entry = info(name)
    if entry.method == "generated":
        from uiad_lite.data import synthetic

        root = synthetic.resolve(root, size="quick", seed=0)
    root = Path(root).expanduser() if root is not None else default_root(name)
    archives = []
    for archive in entry.archives:
        path = root / archive.filename
        archives.append(
            check_archive(archive, path)
            if path.is_file()
            else {
                "filename": archive.filename,
                "present": False,
                "sha256_expected": archive.sha256,
                "sha256_actual": None,
                "ok": None,
            }
        )
    layout = check_layout(name, root, read_one) if entry.loader else {"ok": None, "error": "no loader"}
    archives_ok = all(a["ok"] is not False for a in archives)
    return {
        "name": name,
        "root": str(root),
        "archives": archives,
        "layout": layout,
        # True: checked and fine; False: a problem; None: nothing could be checked (no loader)
        "ok": None if layout["ok"] is None and archives_ok else archives_ok and layout["ok"] is not False,
    }


def format_layout(layout: dict[str, Any]) -> str:
    if layout.get("error"):
        return f"  layout: {layout['error']}"
    lines = []
    for category, entry in layout.get("categories", {}).items():
        if entry["error"]:
            lines.append(f"  {category}: ERROR {entry['error']}")
        else:
            lines.append(
                f"  {category}: train {entry['train']}, test {entry['test']} "
                f"({entry['anomalous']} anomalous), validation {entry['validation']}"
            )
    if layout.get("missing_categories"):
        lines.append(f"  not found: {', '.join(layout['missing_categories'])}")
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    """Human-readable summary of `verify`'s result."""
    status = {True: "OK", False: "PROBLEMS", None: "NOT CHECKED (no loader for its layout yet)"}[report["ok"]]
    lines = [f"{report['name']} in {report['root']}: {status}"]
    for archive in report["archives"]:
        if not archive["present"]:
            lines.append(f"  archive {archive['filename']}: not present (fine once extracted)")
        elif archive["sha256_expected"] is None:
            lines.append(
                f"  archive {archive['filename']}: sha256 {archive['sha256_actual']} (no published hash)"
            )
        else:
            lines.append(
                f"  archive {archive['filename']}: sha256 {'matches' if archive['ok'] else 'MISMATCH'}"
            )
    lines.append(format_layout(report["layout"]))
    return "\n".join(lines)
