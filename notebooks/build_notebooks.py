"""Writes the three Colab walkthroughs (outputs stripped). Edit here, then run:

    python notebooks/build_notebooks.py

Each notebook has a cell tagged `parameters` (papermill's convention); the test suite overrides
it with a tiny configuration and executes every notebook top to bottom.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPOSITORY = "pix2color/pix2color"  # GitHub owner/name the Colab badges and installs point at
FOLDER = Path(__file__).resolve().parent


def badge(name: str) -> str:
    url = f"https://colab.research.google.com/github/{REPOSITORY}/blob/main/notebooks/{name}"
    return f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})"


SETUP = f'''import os, sys
IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:  # install pix2color from the repository (a minute)
    !pip install -q "pix2color @ git+https://github.com/{REPOSITORY}"
import tensorflow as tf
print("TensorFlow", tf.__version__, "| GPUs:", tf.config.list_physical_devices("GPU"),
      "| TPU:", bool(os.environ.get("COLAB_TPU_ADDR")))'''

ACCELERATOR = ("**GPU / TPU.** In Colab choose *Runtime > Change runtime type > GPU* (or TPU). "
               "A full 256x256 training step (batch 4) took 2-5 s on 2 CPU cores in our benchmark; a GPU is far faster. "
               "on a TPU or several GPUs pix2color uses `tf.distribute` by itself (`strategy='auto'`).")


def parameters(code: str):
    cell = new_code_cell(code)
    cell.metadata["tags"] = ["parameters"]
    return cell


def train_notebook():
    name = "01_train_colorizer.ipynb"
    return name, [
        new_markdown_cell(f"# Train a colorizer\n{badge(name)}\n\nTrain the report's model (pix2pix U-Net + "
                          "PatchGAN with R1, in CIE Lab) on the built-in sample photos, your own folder, or COCO "
                          "2017; watch the losses; resume after a disconnect.\n\n" + ACCELERATOR),
        new_code_cell(SETUP),
        new_markdown_cell("## Parameters\nThe defaults are a short demo on the sample photos. For the report's "
                          "model set `DATA = 'coco'`, `IMAGE_SIZE = 256`, `EPOCHS = 15`, `STEPS_PER_EPOCH = None`."),
        parameters('DATA = "sample"        # "sample", "coco", or a folder of your photos (e.g. on Drive)\n'
                   'COCO_DIR = None        # with DATA = "coco": folder holding train2017/, val2017/, ...\n'
                   "IMAGE_SIZE = 128       # the report: 256\n"
                   "EPOCHS = 3             # the report: 15\n"
                   "STEPS_PER_EPOCH = 100  # None = one pass over the images\n"
                   "GAMMA = 0.001          # R1 weight; the report's final model\n"
                   'GENERATOR = "unet"     # or "resnet18": the report\'s pretrained variant (good colours sooner)\n'
                   'ENCODER_WEIGHTS = "imagenet"  # resnet18 only: ImageNet weights from keras-hub, or "none"\n'
                   'PRECISION = "auto"     # bfloat16 on TPUs, recent GPUs and CPUs with AVX512_BF16/AMX; float16 on\n'
                   '                       # older GPUs; float32 elsewhere (the report\'s); the saved model is float32\n'
                   "USE_DRIVE = True       # keep the run on Google Drive, so it survives a disconnect\n"
                   'RUN_NAME = "pix2color-demo"'),
        new_markdown_cell("## Where the run lives\nOn Drive, a disconnect loses nothing: re-running the training "
                          "cell resumes from the last checkpoint (epoch, step, optimizer state)."),
        new_code_cell('if IN_COLAB and USE_DRIVE:\n    from google.colab import drive\n    drive.mount("/content/drive")\n'
                      '    OUT = f"/content/drive/MyDrive/pix2color/{RUN_NAME}"\nelse:\n    OUT = f"runs/{RUN_NAME}"\nprint("run folder:", OUT)'),
        new_markdown_cell("## Data\n`sample` is 201 licensed photos shipped with the package. A folder is searched "
                          "recursively; unreadable, tiny and grayscale images are skipped and listed. COCO needs the "
                          "official folders (`COCO_DIR`) or tensorflow-datasets; without them you get the download "
                          "commands."),
        new_code_cell("from pix2color.data import load_image_set\n"
                      "images = load_image_set(DATA, coco_dir=COCO_DIR, verbose=0)\nprint(images.summary())"),
        new_markdown_cell("## TensorBoard\nLosses update live while the next cell trains (Colab only)."),
        new_code_cell('if IN_COLAB:\n    get_ipython().run_line_magic("load_ext", "tensorboard")\n'
                      '    get_ipython().run_line_magic("tensorboard", f"--logdir {OUT}/logs")'),
        new_markdown_cell("## Train (re-run to resume)\nThe first lines say which precision `auto` picked and why; "
                          "a resumed run keeps the precision it was started with."),
        new_code_cell("from pix2color.config import TrainConfig\nfrom pix2color.training.run import train\n"
                      "config = TrainConfig(data=DATA, coco_dir=COCO_DIR, out=OUT, image_size=IMAGE_SIZE, epochs=EPOCHS,\n"
                      "                     steps_per_epoch=STEPS_PER_EPOCH, r1_gamma=GAMMA, generator=GENERATOR,\n"
                      "                     encoder_weights=ENCODER_WEIGHTS, precision=PRECISION, verbose=2)\n"
                      "result = train(config)\nprint(result.epochs_done, 'epochs,', result.steps_done, 'steps ->', result.generator_path)\n"
                      "import json\nfrom pathlib import Path\nprint('trained in', json.loads(Path(OUT, 'run.json').read_text())['precision'])"),
        new_markdown_cell("## Loss curves\nThe adversarial losses should drift towards log 2 = 0.69 (dotted): "
                          "a discriminator that can no longer tell. L1 falls; R1 stays small."),
        new_code_cell("from IPython.display import Image, display\nfrom pathlib import Path\n"
                      "display(Image(filename=f'{OUT}/losses.png'))"),
        new_markdown_cell("## Samples after the last epoch\nGray input | generated | original, for fixed validation photos."),
        new_code_cell("grids = sorted(Path(OUT, 'samples').glob('epoch_*.png'))\ndisplay(Image(filename=str(grids[-1])))"),
        new_markdown_cell("Next: `02_colorize_and_export.ipynb` colorizes your photos with this run and exports it."),
    ]


def colorize_notebook():
    name = "02_colorize_and_export.ipynb"
    return name, [
        new_markdown_cell(f"# Colorize your photos, export for phones\n{badge(name)}\n\nFull-resolution "
                          "colorization with a trained run, the two inference modes, SavedModel and TFLite export, "
                          "and the TFLite file run by the LiteRT interpreter with sizes and timings.\n\n" + ACCELERATOR),
        new_code_cell(SETUP),
        parameters('MODEL = "runs/pix2color-demo"   # a run folder (notebook 01), a .keras generator or a SavedModel\n'
                   "PHOTOS = None                    # a folder of your photos; None = a few sample photos\n"
                   'OUT = "colorized"\n'
                   'EXPORT_DIR = "exported"\n'
                   'TFLITE_VARIANTS = ("float32", "float16", "int8")  # "dynamic" is slow on CPUs'),
        new_markdown_cell("## Photos\nAny size; grayscale or colour (colour photos are reduced to their lightness first)."),
        new_code_cell("from pathlib import Path\nfrom pix2color.data import sample_photos_dir\n"
                      "photos = sorted(Path(PHOTOS).glob('*')) if PHOTOS else sorted(sample_photos_dir().glob('*__view.jpg'))[:4]\n"
                      "print(len(photos), 'photos')"),
        new_markdown_cell("## Colorize at full resolution\nThe network sees the lightness at its training size; the "
                          "predicted colour is upsampled and laid under the photo's own full-resolution lightness.\n\n"
                          "*deterministic* (default): BatchNorm moving statistics, no dropout: the same photo always "
                          "gets the same colours. *paper*: dropout on and the batch's statistics, as the report evaluates."),
        new_code_cell("import numpy as np\nfrom PIL import Image as PILImage\nfrom pix2color.colorizing.loading import load_network\n"
                      "from pix2color.colorizing.recipe import FullResolutionColorizer\nfrom pix2color.photos import read_image\n"
                      "originals = [read_image(p) for p in photos]\nresults = {}\n"
                      "for mode in ('deterministic', 'paper'):\n"
                      "    network = load_network(MODEL, mode)\n"
                      "    results[mode] = FullResolutionColorizer(network.predict_ab, network.image_size).colorize_batch(originals)\n"
                      "Path(OUT).mkdir(exist_ok=True)\n"
                      "for path, image in zip(photos, results['deterministic']):\n"
                      "    PILImage.fromarray(image).save(Path(OUT, Path(path).stem + '.png'))\n"
                      "print('sizes kept:', all(r.shape == o.shape for r, o in zip(results['deterministic'], originals)))"),
        new_code_cell("import matplotlib.pyplot as plt\nfig, axes = plt.subplots(len(photos), 3, figsize=(10, 3.2 * len(photos)), squeeze=False)\n"
                      "for row, original in enumerate(originals):\n"
                      "    for col, (title, image) in enumerate([('original', original), ('deterministic', results['deterministic'][row]),\n"
                      "                                          ('paper mode', results['paper'][row])]):\n"
                      "        axes[row, col].imshow(image); axes[row, col].set_title(title); axes[row, col].axis('off')\n"
                      "plt.tight_layout(); plt.show()"),
        new_markdown_cell("The same from a terminal: `pix2color colorize PHOTOS... -o OUT --model MODEL [--mode paper] [--compare]`."),
        new_markdown_cell("## Export\nSavedModel: a `serving_default` signature that takes a uint8 image of any size and "
                          "returns the colorized uint8 image. TFLite: built-in ops only, `lightness (1,S,S,1) -> ab (1,S,S,2)`."),
        new_code_cell("from pix2color.colorizing.loading import load_generator\nfrom pix2color.export import savedmodel, tflite\n"
                      "generator = load_generator(MODEL)  # a run folder or .keras file\n"
                      "# overwrite=True: running the notebook again replaces the files it wrote\n"
                      "saved = savedmodel.export_savedmodel(generator, Path(EXPORT_DIR, 'savedmodel'), overwrite=True)\n"
                      "tflite_files = tflite.export_tflite(generator, Path(EXPORT_DIR, 'tflite'), TFLITE_VARIANTS, ('deterministic',),\n"
                      "                                   overwrite=True)"),
        new_markdown_cell("## Run the TFLite file with LiteRT\n`pix2color/export/litert_runner.py` needs only `ai-edge-litert`, numpy and "
                          "Pillow: it is what runs on a phone or a small board."),
        new_code_cell("import time\nfrom pix2color.export.litert_runner import LiteColorizer\nrows = []\n"
                      "for path in tflite_files:\n"
                      "    colorizer = LiteColorizer(path)\n"
                      "    colorizer.colorize(originals[0])  # warm-up\n"
                      "    started = time.perf_counter(); out = colorizer.colorize(originals[0]); seconds = time.perf_counter() - started\n"
                      "    drift = np.abs(out.astype(int) - results['deterministic'][0]).mean()\n"
                      "    rows.append((path.name, path.stat().st_size / 1e6, seconds, drift))\n"
                      "for name, size, seconds, drift in rows:\n"
                      "    print(f'{name:<42} {size:7.1f} MB {seconds:6.2f} s   mean |difference| to Keras: {drift:.2f} levels')"),
    ]


def evaluate_notebook():
    name = "03_evaluate.ipynb"
    return name, [
        new_markdown_cell(f"# Evaluate: PSNR, SSIM, colourfulness, FID, KID, ablation\n{badge(name)}\n\nOur numbers beside the "
                          "report's, against the grayscale baseline (a = b = 0), the report's Table II at small scale, "
                          "and the worst cases.\n\n" + ACCELERATOR),
        new_code_cell(SETUP),
        parameters('MODEL = "runs/pix2color-demo"  # run folder or .keras generator\n'
                   'DATA = "sample"                # "sample", "coco-val", "coco-test" or a folder\n'
                   'ABLATION_CONFIGS = ("4", "6", "11")  # Table II rows: pix2pix, R1 0.001 (final), L1 only; "p1".."p5": pretrained\n'
                   'ENCODER_WEIGHTS = "imagenet"  # for the pretrained rows\n'
                   'FEATURE_WEIGHTS = "imagenet"  # FID / KID: Inception-v3\'s ImageNet weights (downloaded once); None: no FID\n'
                   "ABLATION_STEPS = 200\nABLATION_IMAGE_SIZE = 64\n"
                   'ABLATION_OUT = "runs/ablation"'),
        new_markdown_cell("## PSNR / SSIM / colourfulness / FID / KID\nTwo protocols: the report's (value range 256, mean "
                          "over batches of 4 +- std of the batch means) and the common one (255, per image). PSNR and "
                          "SSIM reward safe grey-brown colours, so watch the grayscale baseline, the colourfulness gap, "
                          "and FID / KID (distances between the colorizations and the photos as sets; compare them "
                          "within pix2color, and prefer KID below a few thousand images)."),
        new_code_cell("from pathlib import Path\nfrom IPython.display import Markdown, display\n"
                      "from pix2color.evaluation import evaluate\nfrom pix2color.evaluation.inception import InceptionFeatures\n"
                      "from pix2color.colorizing.loading import load_generator\n"
                      "features = InceptionFeatures(FEATURE_WEIGHTS) if FEATURE_WEIGHTS else None\n"
                      "print(features.description if features else 'FID / KID left out')\n"
                      "generator = load_generator(MODEL)\nimages, names = evaluate.images_for(DATA)\n"
                      "result = evaluate.evaluate_generator(generator, images, names, verbose=0, features=features)\n"
                      "display(Markdown(result.markdown(f'{MODEL} on {DATA}')))"),
        new_markdown_cell("## Failure cases\nThe four images with the lowest PSNR (deterministic mode)."),
        new_code_cell("import numpy as np\nfrom pix2color import color\nfrom pix2color.training import plots\nfrom pix2color.data import make_eval_dataset\n"
                      "worst = np.argsort(result.values['deterministic']['psnr256'])[:4]\n"
                      "chosen = [sorted(images)[i] for i in worst]  # (for a folder or the sample set)\n"
                      "lightness, ab = next(iter(make_eval_dataset(chosen, generator.input_shape[1], 4)))\n"
                      "generated = color.model_outputs_to_rgb(lightness, generator(lightness, training=False)).numpy()\n"
                      "gray = color.model_outputs_to_rgb(lightness, 0 * ab).numpy()\n"
                      "plots.comparison_grid([('gray', gray), ('generated', generated), ('original', color.model_outputs_to_rgb(lightness, ab).numpy())], 'worst.png')\n"
                      "from IPython.display import Image\ndisplay(Image(filename='worst.png'))"),
        new_markdown_cell("## Ablation (Table II) at small scale\nEach configuration trains from scratch (resumable), "
                          "then is evaluated in the report's mode. At this scale the numbers show trends at best; the "
                          "report's column is 15 epochs on COCO at 256x256."),
        new_code_cell("from pix2color.config import TrainConfig\nfrom pix2color.evaluation import ablation\n"
                      "base = TrainConfig(data='sample', epochs=1, steps_per_epoch=ABLATION_STEPS, image_size=ABLATION_IMAGE_SIZE,\n"
                      "                   encoder_weights=ENCODER_WEIGHTS, verbose=0)\n"
                      "Path(ABLATION_OUT).mkdir(parents=True, exist_ok=True)\n"
                      "rows = ablation.run_ablation(base, ABLATION_CONFIGS, Path(ABLATION_OUT), log=lambda *_: None,\n"
                      "                             features=features)\n"
                      "display(Markdown(Path(ABLATION_OUT, 'ablation.md').read_text()))\n"
                      "display(Image(filename=str(Path(ABLATION_OUT, 'ablation.png'))))"),
    ]


def main():
    for build in (train_notebook, colorize_notebook, evaluate_notebook):
        name, cells = build()
        notebook = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "accelerator": "GPU",
            "colab": {"provenance": []},
        })
        nbformat.write(notebook, FOLDER / name)
        print("wrote", FOLDER / name)


if __name__ == "__main__":
    main()
