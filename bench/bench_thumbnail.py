"""Image processing beside bare Pillow, the vipsthumbnail CLI and pyvips, plus peak memory at the pixel limit.

Inputs are made here: 12-megapixel JPEGs (4000×3000, gradients + blotches + grain, quality 90, a
phone's EXIF with a GPS block), 8 of them (quick: 4), each a little different. Every contender
processes every file per round, the contenders take turns file by file, and the median of 5
rounds (quick: 3) is reported in files per second:

* our pipeline path, ``verify_and_thumbnail`` exactly as `updown.processing.pipeline.Pipeline`
  calls it (``strip_gps`` beside it in the note), against a bare
  ``Image.open; draft; thumbnail((256, 256)); save WEBP`` per file;
* that pipeline path against Debian's ``vipsthumbnail`` started once per file, the way a
  Lambda-style thumbnailer runs it (skipped, not failed, when it is not installed);
* our ``thumbnail`` against ``pyvips.Image.thumbnail`` + ``webpsave`` in-process (operation cache
  off, so a repeated file is not answered from it): the library choice of ``images.py``.

Memory: a fresh Python process runs ``verify_and_thumbnail`` on a
50-megapixel JPEG (8660×5773, under the default 50,000,000-pixel limit) and on a 50-megapixel PNG;
its peak RSS is the ``ru_maxrss`` that ``wait4`` reports for that child (``RUSAGE_CHILDREN``
narrowed to the one child, so earlier children such as vipsthumbnail cannot leak into it), spawned
by a small launcher process so that our own high-water mark does not carry over into it. A
process that only imports the module gives the interpreter's own baseline.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageChops

from bench.common import Row
from updown.processing import images
from updown.settings import ProcessingSettings

VIPSTHUMBNAIL = "/usr/bin/vipsthumbnail"
PHOTO_SIZE = (4000, 3000)  # 12 MP
BIG_SIZE = (8660, 5773)  # 49,994,180 pixels: the largest 3:2 image under the default limit
RSS_GOAL_MIB = 300.0
MIB = 1024 * 1024

_SETTINGS = ProcessingSettings()
LIMITS = images.ImageLimits(max_pixels=_SETTINGS.max_pixels)
LONGEST = _SETTINGS.thumbnail_size

# Spawns argv[1:] and prints the child's peak RSS in KiB (nonzero exit when the child failed).
_LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
print(usage.ru_maxrss)
sys.exit(code)
"""
# Run in a fresh interpreter: argv = [mode, src, dst]; mode "import" stops after the imports.
_CHILD = """
import sys
from pathlib import Path
from updown.processing import images
from updown.settings import ProcessingSettings
mode, src, dst = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
if mode != "import":
    p = ProcessingSettings()
    limits = images.ImageLimits(max_pixels=p.max_pixels)
    images.verify_and_thumbnail(src, dst, longest=p.thumbnail_size, limits=limits)
"""


def _scene(size: tuple[int, int]) -> Image.Image:
    """A noisy RGB picture: gradients, soft blotches and sensor-like grain (nothing compresses it away)."""
    w, h = size
    linear = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    radial = Image.radial_gradient("L").resize(size, Image.Resampling.BILINEAR)
    blotches = Image.effect_noise((max(1, w // 64), max(1, h // 64)), 60).resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, 18)
    bases = (linear, radial.transpose(Image.Transpose.FLIP_LEFT_RIGHT), linear.transpose(Image.Transpose.ROTATE_180))
    channels = [
        # One grain layer, shifted per channel: three independent-looking noise planes for the price of one.
        ImageChops.add(ImageChops.blend(base, blotches, 0.35), ImageChops.offset(grain, 97 * i, 61 * i), 1.0, -128)
        for i, base in enumerate(bases)
    ]
    return Image.merge("RGB", channels)


def _camera_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "BenchCam", "BC-12", 1  # make, model, orientation
    exif[0x0132] = "2025:01:01 12:00:00"
    exif[images.GPS_IFD] = {1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (4.0, 53.0, 0.25)}
    return exif


def _make_photos(folder: Path, count: int) -> list[Path]:
    base = _scene(PHOTO_SIZE)
    exif = _camera_exif()
    paths = []
    for i in range(count):
        # Shifted (and every other one mirrored): each file's bytes differ, its statistics do not.
        im = ImageChops.offset(base, 131 * i, 71 * i)
        if i % 2:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = folder / f"photo-{i}.jpg"
        im.save(path, format="JPEG", quality=90, exif=exif)
        paths.append(path)
    return paths


def _pipeline(src: Path, dst: Path) -> None:
    # Pipeline._check_image: the header check, then one scaled decode that is check and thumbnail.
    images.verify_and_thumbnail(src, dst, longest=LONGEST, limits=LIMITS)


def _pipeline_with_gps(src: Path, dst: Path) -> None:
    # The whole image part of Pipeline._verify_and_publish: check + thumbnail, then strip GPS.
    images.verify_and_thumbnail(src, dst, longest=LONGEST, limits=LIMITS)
    clean = dst.with_suffix(".clean.jpg")
    images.strip_gps(src, clean)
    clean.unlink(missing_ok=True)  # gone before writeback: no disk flush lands in another contender's turn


def _ours_thumbnail(src: Path, dst: Path) -> None:
    images.thumbnail(src, dst, longest=LONGEST, limits=LIMITS)


def _bare_pillow(src: Path, dst: Path) -> None:
    with Image.open(src) as im:
        im.draft("RGB", (LONGEST, LONGEST))
        im.thumbnail((LONGEST, LONGEST))
        im.save(dst, format="WEBP")


def _vipsthumbnail(src: Path, dst: Path) -> None:
    subprocess.run([VIPSTHUMBNAIL, str(src), "-s", str(LONGEST), "-o", f"{dst}[Q=80]"], check=True, capture_output=True)


def _pyvips_thumbnail() -> Callable[[Path, Path], None] | None:
    try:
        import pyvips  # type: ignore[import-untyped]
    except (ImportError, OSError):
        return None
    pyvips.cache_set_max(0)  # the same file comes back every round: no answers from the operation cache

    def thumb(src: Path, dst: Path) -> None:
        pyvips.Image.thumbnail(str(src), LONGEST).webpsave(str(dst), Q=80)

    return thumb


def _pyvips_versions() -> str:
    import pyvips

    return f"pyvips {pyvips.__version__}, libvips {pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}"


def _vips_cli_version() -> str:
    done = subprocess.run([VIPSTHUMBNAIL, "--vips-version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "libvips ?"


def _check_output(path: Path) -> None:
    with Image.open(path) as im:
        if im.format != "WEBP" or max(im.size) != LONGEST:
            raise RuntimeError(f"{path.name}: {im.format} {im.size}, not a WebP with longest side {LONGEST}")


def _rates(
    contenders: dict[str, Callable[[Path, Path], None]], photos: list[Path], out: Path, rounds: int
) -> dict[str, float]:
    """Files per second of each contender, the median over rounds of every file once.

    The contenders take turns file by file (the order rotating), so all of them sample the same
    stretch of a shared machine; each one's time in a round is the sum of its own calls."""
    for name, fn in contenders.items():  # warm-up (imports, page cache, libraries), and a check of the output
        fn(photos[0], out / f"{name}-warm.webp")
        _check_output(out / f"{name}-warm.webp")
    names = list(contenders)
    samples: dict[str, list[float]] = {name: [] for name in names}
    turn = 0
    for _ in range(rounds):
        spent = dict.fromkeys(names, 0.0)
        for i, photo in enumerate(photos):
            for name in names[turn:] + names[:turn]:
                t0 = time.perf_counter()
                contenders[name](photo, out / f"{name}-{i}.webp")
                spent[name] += time.perf_counter() - t0
            turn = (turn + 1) % len(names)
        for name in names:
            samples[name].append(len(photos) / spent[name])
    return {name: statistics.median(values) for name, values in samples.items()}


def _peak_rss_mib(mode: str, src: Path, dst: Path) -> float:
    """ru_maxrss of a fresh interpreter running the child script, in MiB.

    Linux carries the old address space's high-water mark across ``exec``, so a child spawned from
    this (by now large) process would report our RSS, not its own. A small launcher interpreter
    spawns the probe instead and reads the probe's ``wait4`` rusage: the floor is the launcher's few MiB.
    """
    probe = [sys.executable, "-c", _CHILD, mode, str(src), str(dst)]
    done = subprocess.run([sys.executable, "-S", "-c", _LAUNCHER, *probe], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the memory probe ({mode} {src.name}) failed:\n{done.stdout}{done.stderr}")
    return int(done.stdout.split()[-1]) / 1024  # KiB on Linux


def _rss_note(peak: float, baseline: float, *, goal: bool) -> str:
    head = f"goal < {RSS_GOAL_MIB:g} MiB {'ok' if peak < RSS_GOAL_MIB else 'ABOVE GOAL'}; " if goal else "info; "
    return f"{head}fresh process, baseline (python + imports) {baseline:.0f} MiB, rise {peak - baseline:+.0f} MiB"


def run(quick: bool = False) -> list[Row]:
    count, rounds = (4, 3) if quick else (8, 5)
    have_vips_cli = Path(VIPSTHUMBNAIL).is_file()
    pyvips_thumb = _pyvips_thumbnail()
    with tempfile.TemporaryDirectory(prefix="bench-thumbnail-") as tmp:
        root = Path(tmp)
        out = root / "out"
        out.mkdir()
        photos = _make_photos(root, count)
        mean_mib = statistics.mean(p.stat().st_size for p in photos) / MIB

        contenders: dict[str, Callable[[Path, Path], None]] = {
            "pipeline": _pipeline,
            "pipeline+gps": _pipeline_with_gps,
            "thumbnail": _ours_thumbnail,
            "bare": _bare_pillow,
        }
        if have_vips_cli:
            contenders["vipsthumbnail"] = _vipsthumbnail
        if pyvips_thumb is not None:
            contenders["pyvips"] = pyvips_thumb
        rates = _rates(contenders, photos, out, rounds)

        big = _scene(BIG_SIZE)
        big_jpeg, big_png = root / "big.jpg", root / "big.png"
        big.save(big_jpeg, format="JPEG", quality=90)
        big.save(big_png, format="PNG", compress_level=1)
        del big
        baseline = _peak_rss_mib("import", big_jpeg, out / "none.webp")
        jpeg_rss = _peak_rss_mib("process", big_jpeg, out / "big-jpeg.webp")
        png_rss = _peak_rss_mib("process", big_png, out / "big-png.webp")
        _check_output(out / "big-jpeg.webp")
        _check_output(out / "big-png.webp")

    ms = {name: 1000 / r for name, r in rates.items()}
    rgb_mib = BIG_SIZE[0] * BIG_SIZE[1] * 3 / MIB
    label = f"12 MP JPEG q90 ×{count}, {mean_mib:.1f} MiB each"
    rows = [
        Row(
            "thumbnail: verify+thumbnail vs bare Pillow",
            rates["pipeline"],
            rates["bare"],
            "files/s",
            "bare Pillow",
            goal=0.9,
            note=(
                f"{label}; per file: pipeline {ms['pipeline']:.0f} ms (thumbnail alone {ms['thumbnail']:.0f} ms)"
                f" vs bare {ms['bare']:.0f} ms; with strip_gps {rates['pipeline+gps']:.1f} files/s"
            ),
        )
    ]
    if have_vips_cli:
        rows.append(
            Row(
                "thumbnail: pipeline vs vipsthumbnail CLI",
                rates["pipeline"],
                rates["vipsthumbnail"],
                "files/s",
                "vipsthumbnail",
                goal=2.0,
                note=(
                    f"one {VIPSTHUMBNAIL} process per file ({_vips_cli_version()}); our thumbnail alone "
                    f"{rates['thumbnail'] / rates['vipsthumbnail']:.2f}x"
                ),
            )
        )
    else:
        rows.append(
            Row(
                "thumbnail: pipeline vs vipsthumbnail CLI",
                rates["pipeline"],
                None,
                "files/s",
                note=f"SKIPPED: {VIPSTHUMBNAIL} is not installed (apt-get install libvips-tools)",
            )
        )
    if pyvips_thumb is not None:
        rows.append(
            Row(
                "thumbnail: library Pillow vs pyvips",
                rates["thumbnail"],
                rates["pyvips"],
                "files/s",
                "pyvips",
                goal=1.0,
                note=f"informational: in-process, {_pyvips_versions()}, vips cache off; the choice in images.py",
            )
        )
    else:
        rows.append(
            Row(
                "thumbnail: library Pillow vs pyvips",
                rates["thumbnail"],
                None,
                "files/s",
                note="SKIPPED: pyvips is not importable",
            )
        )
    rows += [
        Row(
            "thumbnail: peak RSS 50 MP JPEG verify+thumb",
            jpeg_rss,
            None,
            "MiB",
            note=_rss_note(jpeg_rss, baseline, goal=True),
        ),
        Row(
            "thumbnail: peak RSS 50 MP PNG verify+thumb",
            png_rss,
            None,
            "MiB",
            note=f"{_rss_note(png_rss, baseline, goal=False)}; a full decode is {rgb_mib:.0f} MiB of RGB",
        ),
    ]
    return rows


if __name__ == "__main__":
    for row in run(quick=bool(os.environ.get("BENCH_QUICK"))):
        print(row.line())
