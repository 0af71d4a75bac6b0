"""Reading radiographs: DICOM as hospitals deliver it (the shared real files and generated ones
for each case a real file does not cover), and the window function."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.data.images import decode_images
from ml.data.pixels import read_gray8
from ml.data.radiograph import (
    ImageReadError,
    Window,
    apply_window,
    check_image,
    is_dicom,
    read_radiograph,
)
from tests.factories import write_dicom


def test_the_shared_chest_gives_identical_pixels_uncompressed_and_as_jpeg_2000(
    shared_data: Path,
) -> None:
    plain = read_radiograph(shared_data / "dicom" / "RG1_UNCR.dcm")
    j2k = read_radiograph(shared_data / "dicom" / "RG1_J2KR.dcm")
    assert plain.values.shape == (1955, 1841)
    assert np.array_equal(plain.values, j2k.values)
    assert (plain.value_range, plain.bits_stored) == ((874.0, 26479.0), 15)
    # the header's window is the default; MONOCHROME1 is shown inverted; spacing 0 is none
    assert plain.window == Window(15000.0, 30000.0)
    assert plain.invert is True
    assert plain.pixel_spacing_mm is None
    extremity = read_radiograph(shared_data / "dicom" / "RG3_UNCR.dcm")
    assert (extremity.values.shape, extremity.bits_stored) == ((1760, 1760), 10)
    assert extremity.window == Window(550.0, 1024.0)


def test_monochrome1_is_shown_as_monochrome2(shared_data: Path) -> None:
    path = shared_data / "dicom" / "RG1_UNCR.dcm"
    r = read_radiograph(path)
    gray = np.asarray(read_gray8(path))
    assert gray.shape == (1955, 1841)
    # the brightest stored value (densest tissue in MONOCHROME1's sense... dark) shows darkest
    brightest = np.unravel_index(np.argmax(r.values), r.values.shape)
    darkest = np.unravel_index(np.argmin(r.values), r.values.shape)
    assert gray[brightest] < gray[darkest]
    assert np.array_equal(gray, apply_window(r.values, r.window, invert=True))


def test_window_function_is_dicoms_linear_one() -> None:
    levels = np.arange(256, dtype=np.float64)
    assert np.array_equal(apply_window(levels, Window(128, 256)), levels.astype(np.uint8))
    # PS3.3 C.11.2.1.2: c=2048, w=4096 spans 0..4095; below and above clip
    values = np.array([-10.0, 0.0, 2047.5, 4095.0, 5000.0])
    assert apply_window(values, Window(2048, 4096)).tolist() == [0, 0, 128, 255, 255]
    assert apply_window(values, Window(2048, 4096), invert=True).tolist() == [255, 255, 127, 0, 0]
    # a width of 1 is a threshold at the centre
    assert apply_window(np.array([99.0, 100.0, 101.0]), Window(100.5, 1)).tolist() == [0, 0, 255]


def test_rescale_voi_lut_spacing_and_no_window(tmp_path: Path) -> None:
    pixels = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48) % 4096
    ct = read_radiograph(
        write_dicom(tmp_path / "a.dcm", pixels, rescale=(2.0, -1024.0), spacing=(0.143, 0.15))
    )
    assert np.array_equal(ct.values, pixels * 2.0 - 1024.0)
    assert ct.pixel_spacing_mm == (0.143, 0.15)
    assert ct.invert is False
    # no window in the header: the image's own range
    low, high = ct.value_range
    assert ct.window == Window((low + high) / 2 + 0.5, high - low + 1)
    lut = read_radiograph(write_dicom(tmp_path / "b.dcm", pixels, voi_lut=(1024, 1000)))
    assert lut.window == Window(1512.0, 1024.0)
    several = write_dicom(tmp_path / "c.dcm", pixels, window=(0, 0))
    assert read_radiograph(several).window.width > 1  # an unusable window falls back
    assert is_dicom(several)
    # a DICOM file by its preamble, whatever its name
    renamed = several.rename(tmp_path / "c-no-suffix")
    assert is_dicom(renamed) and read_radiograph(renamed).values.shape == (64, 48)


@pytest.mark.parametrize(
    ("pixels", "options", "reason"),
    [
        (np.zeros((3, 16, 16)), {}, "multi-frame DICOM (3 frames)"),
        (np.zeros((16, 16, 3)), {"photometric": "RGB"}, "colour DICOM (RGB, 3 samples"),
    ],
)
def test_multi_frame_and_colour_dicom_are_refused(
    tmp_path: Path, pixels: np.ndarray, options: dict[str, str], reason: str
) -> None:
    path = write_dicom(tmp_path / "x.dcm", pixels, **options)  # type: ignore[arg-type]
    with pytest.raises(ImageReadError, match=re.escape(reason)):
        read_radiograph(path)
    assert reason in (check_image(path) or "")


def test_unreadable_files_say_why(tmp_path: Path) -> None:
    garbage = tmp_path / "broken.dcm"
    garbage.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage")
    assert "DICOM" in (check_image(garbage) or "")
    png = tmp_path / "cut.png"
    Image.fromarray(np.full((64, 64), 7, np.uint8)).save(png)
    png.write_bytes(png.read_bytes()[:60])
    assert "not a readable image" in (check_image(png) or "")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert "not a readable image" in (check_image(text) or "")
    good = tmp_path / "good.png"
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(good)
    assert check_image(good) is None


def test_the_engine_reads_dicom(tmp_path: Path, shared_data: Path) -> None:
    pixels = (np.random.default_rng(0).random((40, 30)) * 4095).astype(np.uint16)
    path = write_dicom(tmp_path / "a.dcm", pixels, window=(2048, 4096))
    batch = decode_images([path, shared_data / "dicom" / "RG3_UNCR.dcm"], size=32)
    assert batch.shape == (2, 32, 32)
    expected = Image.fromarray(apply_window(pixels.astype(np.float64), Window(2048, 4096)))
    expected = expected.resize((32, 32), Image.Resampling.BILINEAR)
    assert np.array_equal(batch[0].numpy(), np.asarray(expected))
