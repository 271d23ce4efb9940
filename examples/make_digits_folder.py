"""Write scikit-learn's bundled handwritten digits (1,797 real images, 10 classes) as an image folder.

    python examples/make_digits_folder.py digits-train
    repcurate build --train-dir digits-train --out digits-repset
"""
import sys

from repcurate.example_data import write_digits_folder

if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else "digits-train"
    counts = write_digits_folder(target)
    sys.stderr.write(f"wrote {sum(counts.values())} images in {len(counts)} class folders to {target}\n")
