"""Peak memory of ingesting one hostile zip: many large entries just under the bomb ratio.

Usage (from the repository root): .venv/bin/python bench/zip_memory.py [--entries 16]
[--entry-mb 45] [--ratio 172]

What the security review sent: a 4.2 MB zip of 16 entries of 45 MB, each deflating about
172× (under MAX_COMPRESSION_RATIO, 200×), every entry a valid image. This script builds such
an archive (24-bit BMPs of zeros, each with its own block of noise that sets the ratio), then,
in a fresh process, ingests it through datasets.services.import_zip into a throw-away SQLite
database and media folder, and prints peak resident memory during the ingest: of that process
(its VmHWM, reset through /proc/self/clear_refs just before; getrusage's ru_maxrss cannot be
reset and would count the migrations), and of its whole process tree (the image workers are
grandchildren, under the forkserver): the largest sum of VmRSS sampled every 5 ms, and the sum
of each process's own VmHWM (an upper bound). Needs Linux and about 1 GB of free disk.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BMP_HEADER = 54


def _bmp(side: int, noise: int, seed: int) -> bytearray:
    """A side × side 24-bit BMP of black pixels with `noise` random bytes in the middle."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side)).save(out, "BMP")
    data = bytearray(out.getvalue())
    start = BMP_HEADER + (len(data) - BMP_HEADER) // 2
    data[start : start + noise] = os.urandom(noise)
    data[BMP_HEADER : BMP_HEADER + 4] = seed.to_bytes(4, "little")  # every entry differs
    return data


def build(path: Path, entries: int, entry_mb: float, ratio: float) -> None:
    """Write the archive; the noise is sized (one correction) to give about `ratio`."""
    side = int((entry_mb * 10**6 / 3) ** 0.5) // 4 * 4
    noise = int(side * side * 3 / ratio)
    sample = _bmp(side, noise, 0)
    measured = len(sample) / len(zlib.compress(bytes(sample)))
    noise = max(1, int(noise * (1 / ratio - 1 / 1030) / (1 / measured - 1 / 1030)))
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(entries):
            archive.writestr(f"set/image{index:02d}.bmp", bytes(_bmp(side, noise, index + 1)))
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    total = sum(i.file_size for i in infos)
    worst = max(i.file_size / i.compress_size for i in infos)
    print(
        f"archive: {path.stat().st_size / 1e6:.1f} MB, {len(infos)} entries of "
        f"{infos[0].file_size / 1e6:.1f} MB ({side}×{side} BMP), {total / 1e6:.0f} MB "
        f"unpacked, highest ratio {worst:.0f}×",
        flush=True,
    )


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _status_kb(pid: int, key: bytes) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Sums VmRSS over this process and its descendants every 5 ms; keeps the maximum."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb = 0
        self.hwm_kb: dict[int, int] = {}  # each process's own high-water mark, last seen
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            pids = _descendants(os.getpid())
            self.peak_kb = max(self.peak_kb, sum(_status_kb(p, b"VmRSS:") for p in pids))
            for pid in pids:
                self.hwm_kb[pid] = max(self.hwm_kb.get(pid, 0), _status_kb(pid, b"VmHWM:"))
            time.sleep(0.005)


def ingest(path: Path, data_dir: Path) -> None:
    """Set Django up on a throw-away database, then import the archive and print figures."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "lorastudio.settings"
    os.environ["DEBUG"] = "True"
    os.environ["LORASTUDIO_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from datasets import services

    call_command("migrate", verbosity=0)
    owner = get_user_model().objects.create_user("bench")
    dataset = services.create_dataset(owner, name="hostile zip")
    before_kb = _status_kb(os.getpid(), b"VmRSS:")
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # VmHWM := VmRSS: this process's peak from here on
    sampler = TreeSampler()
    sampler.start()
    start = time.perf_counter()
    report = services.import_zip(dataset, path)
    elapsed = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    self_peak_kb = _status_kb(os.getpid(), b"VmHWM:")
    print(f"ingest: {len(report.added)} added, {len(report.rejected)} refused in {elapsed:.1f} s")
    print(f"web process before the ingest:        {before_kb / 1024:6.0f} MiB")
    print(f"web process peak during it (VmHWM):   {self_peak_kb / 1024:6.0f} MiB")
    print(f"process tree peak (sampled VmRSS sum): {sampler.peak_kb / 1024:5.0f} MiB")
    print(f"process tree, sum of each one's peak: {sum(sampler.hwm_kb.values()) / 1024:6.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=16)
    parser.add_argument("--entry-mb", type=float, default=45.0)
    parser.add_argument("--ratio", type=float, default=172.0)
    parser.add_argument("--ingest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ingest:
        ingest(args.ingest, args.data_dir)
        return
    with tempfile.TemporaryDirectory(prefix="lorastudio-bench-") as tmp:
        archive = Path(tmp) / "hostile.zip"
        build(archive, args.entries, args.entry_mb, args.ratio)
        # A fresh process: building the archive must not count in the ingest's peak.
        command = [sys.executable, __file__, "--ingest", str(archive), "--data-dir", tmp]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
