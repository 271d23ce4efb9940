"""Write the example detection / segmentation dataset: Fashion-MNIST objects pasted onto real photo crops.

    python examples/make_detection_dataset.py composites [--train-images 1200] [--val-images 300] [--seed 0]
        [--size 128] [--longtail-rho 10] [--background-share 0.08] [--max-objects 5] [--overwrite]

Layout (YOLO data.yaml + images/labels/masks per split, COCO instances_{train,val}.json): see
``repcurate.example_detection``. Needs Debian's ``dataset-fashion-mnist``; nothing is downloaded.
The bundled detector and segmenter (``repcurate.models.tiny_yolo`` / ``unet_lite``) were trained on the
default arguments.
"""
import argparse
import json
import sys

from repcurate.errors import RepcurateError
from repcurate.example_detection import write_detection_dataset

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default="composites")
    parser.add_argument("--train-images", type=int, default=1200)
    parser.add_argument("--val-images", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--longtail-rho", type=float, default=10.0)
    parser.add_argument("--background-share", type=float, default=0.08)
    parser.add_argument("--max-objects", type=int, default=5)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args()
    try:
        record = write_detection_dataset(args.out, train_images=args.train_images, val_images=args.val_images, seed=args.seed,
                                         size=args.size, longtail_rho=args.longtail_rho, background_share=args.background_share,
                                         max_objects=args.max_objects, overwrite=args.overwrite)
    except RepcurateError as exc:
        sys.stderr.write(f"make_detection_dataset: error: {exc}\n")
        sys.exit(exc.exit_code)
    sys.stderr.write(f"wrote {record['train']['images']} train + {record['val']['images']} val images to {args.out}\n")
    sys.stdout.write(json.dumps({split: record[split] for split in ("train", "val")}, indent=2) + "\n")
