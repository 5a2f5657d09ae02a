"""Write the example notebooks (source of truth for notebooks/*.ipynb; outputs are not stored)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]

TPGAN = [
    new_markdown_cell(
        "# TP-GAN quick start\n\n"
        "facezoo's pieces are plain Python objects: the synthetic data, the LightningModule, its networks and "
        "losses work outside the Trainer. The test suite runs this notebook with the tiny settings below; "
        "raise `SIZE` to 128 and `WIDTH` to 1.0 for the real model."
    ),
    new_code_cell("SIZE, WIDTH, BATCHES = 64, 0.125, 2  # tiny settings (the tests run these)"),
    new_code_cell(
        "import torch\n"
        "from IPython.display import display\n"
        "from PIL import Image\n\n"
        "from facezoo.callbacks import make_grid\n"
        "from facezoo.data.synthetic import SyntheticFrontalization\n\n"
        "data = SyntheticFrontalization(split='val', size=SIZE, length=8, num_identities=4)\n"
        "batch = torch.utils.data.default_collate([data[i] for i in range(4)])\n"
        "print({k: tuple(v.shape) for k, v in batch.items() if torch.is_tensor(v)})\n"
        "display(Image.fromarray(make_grid({'profile': batch['image'], 'frontal': batch['target']})))"
    ),
    new_markdown_cell(
        "The module, built from its config (`conf/model/tpgan.yaml` holds every default; the overrides are "
        "the command line's), its generator's outputs and the unweighted loss terms of one G step "
        "(their weights: `model.loss.g.<term>`):"
    ),
    new_code_cell(
        "from facezoo.config import build_model\n"
        "from facezoo.methods.tpgan.module import five_points\n\n"
        "model = build_model('model=tpgan', f'data.size={SIZE}', f'model.width={WIDTH}', 'model.zdim=8',\n"
        "                    'model.feature_dim=32', 'data.splits.train.num_identities=4',\n"
        "                    'model.frozen.identity_loss=null')  # no LightCNN weights here: identity term off\n"
        "out = model(batch['image'], five_points(batch))\n"
        "print({k: tuple(v.shape) for k, v in out.items() if torch.is_tensor(v)})\n"
        "print('weights:', model.loss_weights['g'])\n"
        "terms = model.g_terms(batch)\n"
        "{k: round(float(v), 4) for k, v in terms.items()}"
    ),
    new_markdown_cell("A few training batches with Lightning, then the frontalized validation faces:"),
    new_code_cell(
        "import lightning as L\n"
        "from torch.utils.data import DataLoader\n\n"
        "train = SyntheticFrontalization(split='train', size=SIZE, length=4 * BATCHES, num_identities=4)\n"
        "trainer = L.Trainer(max_epochs=1, accelerator='cpu', logger=False, enable_checkpointing=False,\n"
        "                    enable_progress_bar=False, enable_model_summary=False)\n"
        "trainer.fit(model, DataLoader(train, batch_size=4))\n"
        "print('optimizer steps:', trainer.global_step)\n"
        "display(Image.fromarray(make_grid(model.sample_rows(batch))))"
    ),
]


def main() -> None:
    notebooks = {"tpgan_quickstart.ipynb": TPGAN}
    for name, cells in notebooks.items():
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        nbformat.write(nb, ROOT / "notebooks" / name)
        print("wrote", ROOT / "notebooks" / name)


if __name__ == "__main__":
    main()
