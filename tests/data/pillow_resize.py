"""Pillow's reference resizes for tests/data/test_image_transform.cpp.

Usage: pillow_resize.py JOBS_FILE

Each line of JOBS_FILE is one job:
    IN_PATH IN_WIDTH IN_HEIGHT FILTER OUT_WIDTH OUT_HEIGHT OUT_PATH
where IN_PATH holds raw 8-bit RGB bytes (HWC, row-major), FILTER is "bilinear" or
"bicubic", and OUT_PATH receives the resized image in the same raw layout.

Image.resize is called with its defaults otherwise (reducing_gap=None, no box), which is
what torchvision's Resize calls on a PIL image. Exits with 77 when PIL cannot be imported,
so that the test can skip instead of fail.
"""
import sys

try:
    from PIL import Image
except ImportError:
    print("pillow_resize.py: cannot import PIL (install python3-pil)", file=sys.stderr)
    sys.exit(77)

# Image.Resampling since Pillow 9.1; the bare constants before.
_RESAMPLING = getattr(Image, "Resampling", Image)
FILTERS = {"bilinear": _RESAMPLING.BILINEAR, "bicubic": _RESAMPLING.BICUBIC}


def run_job(fields):
    in_path, in_w, in_h, name, out_w, out_h, out_path = fields
    with open(in_path, "rb") as f:
        data = f.read()
    img = Image.frombytes("RGB", (int(in_w), int(in_h)), data)
    out = img.resize((int(out_w), int(out_h)), resample=FILTERS[name])
    with open(out_path, "wb") as f:
        f.write(out.tobytes())


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    with open(sys.argv[1]) as f:
        for line in f:
            fields = line.split()
            if fields:
                run_job(fields)


if __name__ == "__main__":
    main()
