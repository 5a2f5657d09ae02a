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

PSP = [
    new_markdown_cell(
        "# pSp: invert, interpolate, mix styles\n\n"
        "A pSp encoder maps a face to the W+ codes of its StyleGAN2 decoder, one style per generator layer; "
        "decoding them gives the face back, and the codes can be edited: walked between two faces, or mixed "
        "(coarse styles: pose and face shape; fine styles: colours and texture). Set `PSP_FILE` to a facezoo pSp "
        "checkpoint (`runs/.../checkpoints/last.ckpt`) or an official release (`psp_ffhq_encode.pt`); with `None` "
        "a tiny random pSp is built, which the test suite runs: its pictures are noise, every step is the real one."
    ),
    new_code_cell(
        "PSP_FILE = None  # a facezoo pSp checkpoint or an official pSp release; None: tiny random pSp (the tests)\n"
        "STEPS = 5        # interpolation steps"
    ),
    new_code_cell(
        "import torch\n"
        "from IPython.display import display\n"
        "from omegaconf import OmegaConf\n"
        "from PIL import Image\n\n"
        "from facezoo.callbacks import make_grid\n"
        "from facezoo.methods.psp.inference import load_psp\n"
        "from facezoo.methods.psp.networks import PSP, style_groups\n"
        "from facezoo.nets.stylegan2 import Generator\n\n"
        "if PSP_FILE is None:  # 32 px decoder with 16-d styles, 1/16-width encoder, untrained\n"
        "    torch.manual_seed(0)\n"
        "    decoder = Generator(32, 16, 2, channel_multiplier=1, narrow=1 / 32)\n"
        "    psp = PSP(decoder, width=0.0625, irse50=False, input_size=32, pool_size=32,\n"
        "              start_from_latent_avg=True, n_mean_latent=256).eval()\n"
        "    SIZE = 32\n"
        "else:  # what `python -m facezoo.infer model=psp` loads: the model, its task, its input size\n"
        "    option = 'ckpt_path' if str(PSP_FILE).endswith('.ckpt') else 'weights'\n"
        "    loaded = load_psp(OmegaConf.create({option: str(PSP_FILE)}))\n"
        "    psp, SIZE = loaded.psp, loaded.input_size\n"
        "print(f'{psp.n_styles} styles of {psp.style_dim}, decoder {psp.output_size} px, input {SIZE} px')"
    ),
    new_markdown_cell(
        "Two faces, FFHQ-aligned as pSp was trained: a photo (dlib's 68 points, the FFHQ crop) and one of "
        "facezoo's synthetic faces. `psp.encode` gives their W+ codes, `psp.decode` the faces back (with the "
        "decoder's fixed noise; `resize=True` pools them to the encoder's input size)."
    ),
    new_code_cell(
        "import skimage.data\n"
        "import torch.nn.functional as F\n\n"
        "from facezoo.data.synthetic import SyntheticFaces\n"
        "from facezoo.face.align import align_photo\n"
        "from facezoo.face.detect import DlibDetector\n"
        "from facezoo.face.photo import image_to_tensor\n\n"
        "photo = image_to_tensor(align_photo(skimage.data.astronaut(), SIZE, 'ffhq', DlibDetector(), 'astronaut'))\n"
        "synthetic = SyntheticFaces(split='test', size=max(SIZE, 64), length=1)[0]['image'][None]\n"
        "synthetic = F.interpolate(synthetic, size=(SIZE, SIZE), mode='area')\n"
        "faces = torch.cat([photo, synthetic])\n"
        "with torch.no_grad():\n"
        "    w = psp.encode(faces)                                   # (2, n_styles, D)\n"
        "    inverted = psp.decode(w, randomize_noise=False, resize=True)\n"
        "print('W+ codes:', tuple(w.shape))\n"
        "display(Image.fromarray(make_grid({'face': faces, 'pSp': inverted})))"
    ),
    new_markdown_cell("A straight walk in W+ from the first face's codes to the second's, decoded at each step:"),
    new_code_cell(
        "with torch.no_grad():\n"
        "    path = torch.stack([(1 - t) * w[0] + t * w[1] for t in torch.linspace(0, 1, STEPS)])\n"
        "    frames = psp.decode(path, randomize_noise=False, resize=True)\n"
        "print('endpoints are the inversions:', torch.allclose(frames[[0, -1]], inverted, atol=1e-4))\n"
        "display(Image.fromarray(make_grid({'A to B': frames})))"
    ),
    new_markdown_cell(
        "Style mixing (`psp.mix`, the official `latent_mask`): each face keeps its own codes except in the "
        "styles taken from the other face: the coarse ones (pose, face shape) in the first row, the fine ones "
        "(colours) in the second. On the command line: `python -m facezoo.infer model=psp ... n_outputs=4 "
        "latent_mask=8-17` mixes random styles in the same way."
    ),
    new_code_cell(
        "coarse, medium, fine = style_groups(psp.n_styles)\n"
        "other = w.flip(0)                                            # the other face's codes\n"
        "with torch.no_grad():\n"
        "    coarse_mixed = psp.decode(psp.mix(w, coarse, other), randomize_noise=False, resize=True)\n"
        "    fine_mixed = psp.decode(psp.mix(w, fine, other), randomize_noise=False, resize=True)\n"
        "print('mixed styles: coarse', list(coarse), 'fine', list(fine))\n"
        "display(Image.fromarray(make_grid({'pSp': inverted, 'coarse of the other': coarse_mixed,\n"
        "                                   'fine of the other': fine_mixed})))"
    ),
]

MASKGAN = [
    new_markdown_cell(
        "# MaskGAN: editing a face through its mask\n\n"
        "MaskGAN renders a CelebAMask-HQ label map (19 parts) in the style of a face. This notebook edits a mask "
        "with `facezoo.methods.maskgan.edit` (no drawing), renders the edit with the source's style and with "
        "another face's (style copy), and pastes the edit back on the source as `facezoo.infer model=maskgan` "
        "does. The tests run it with the tiny untrained model below (the renderings are noise); set `CKPT` to a "
        "`model=maskgan` checkpoint (e.g. `runs/maskgan_cpu/checkpoints/last.ckpt`) for real ones."
    ),
    new_code_cell("SIZE, WIDTH, CKPT = 64, 0.125, None  # tiny settings (the tests run these)"),
    new_code_cell(
        "import torch\n"
        "from IPython.display import display\n"
        "from PIL import Image\n\n"
        "from facezoo.callbacks import make_grid\n"
        "from facezoo.data.synthetic import SyntheticFaces\n"
        "from facezoo.face.labels import colorize_labels\n\n"
        "data = SyntheticFaces(split='test', size=SIZE, length=2, num_identities=2)\n"
        "faces = torch.stack([data[i]['image'] for i in range(2)])\n"
        "masks = torch.stack([data[i]['mask'] for i in range(2)])  # (2, SIZE, SIZE) CelebAMask-HQ ids\n"
        "display(Image.fromarray(make_grid({'faces': faces, 'masks': colorize_labels(masks)})))"
    ),
    new_markdown_cell(
        "Three edits of the first face's mask: fuller lips (grown by 2 px into the skin), the second face's hair "
        "in place of its own, and thinner brows (their border becomes skin)."
    ),
    new_code_cell(
        "from facezoo.methods.maskgan import edit\n\n"
        "mask = masks[0]\n"
        "edits = {'lips +2 px': edit.grow(mask, 'lips', 2, into='skin'),\n"
        "         'hair of face 2': edit.transplant(mask, masks[1], 'hair'),\n"
        "         'brows -1 px': edit.shrink(mask, 'brows', 1)}\n"
        "for name, edited in edits.items():\n"
        "    print(f'{name}: {int((edited != mask).sum())} pixels relabelled')\n"
        "edited = torch.stack(list(edits.values()))\n"
        "display(Image.fromarray(make_grid({'edited masks': colorize_labels(edited)})))"
    ),
    new_markdown_cell(
        "The model: a checkpoint, or a tiny untrained one built from its config (`model.blend=false`: the "
        "rendering network alone, no stage-1 MaskVAE needed to build it). `generator(mask_to_render, mask_ref, "
        "image_ref)` renders a mask with the style of `image_ref`; `inference.paste_on_source` keeps the source's "
        "pixels away from the edited labels, as the photo pipeline does."
    ),
    new_code_cell(
        "import facezoo\n"
        "from facezoo.config import build_model\n"
        "from facezoo.methods.maskgan.inference import paste_on_source\n\n"
        "if CKPT is None:\n"
        "    torch.manual_seed(0)\n"
        "    model = build_model('model=maskgan', f'data.size={SIZE}', f'model.width={WIDTH}', 'model.blend=false',\n"
        "                        'model.frozen.perceptual_loss=null').eval()\n"
        "else:\n"
        "    model = facezoo.load(CKPT)[0]\n"
        "n = len(edited)\n"
        "source, source_mask = faces[:1].expand(n, -1, -1, -1), mask.expand(n, -1, -1)\n"
        "with torch.no_grad():\n"
        "    own_style = model.generator(edited, source_mask, source)\n"
        "    other_style = model.generator(edited, masks[1:].expand(n, -1, -1), faces[1:].expand(n, -1, -1, -1))\n"
        "pasted = paste_on_source({'image': source, 'mask': source_mask, 'target_mask': edited}, own_style)\n"
        "far = (pasted == source).all(1)\n"
        "print('pixels kept from the source:', f'{far.float().mean():.0%}')\n"
        "display(Image.fromarray(make_grid({'edit, own style': own_style, 'pasted on the source': pasted,\n"
        "                                   'style of face 2': other_style})))"
    ),
    new_markdown_cell(
        "On a photo: `python -m facezoo.infer model=maskgan ckpt_path=CKPT source=face.jpg save_mask=m.png` "
        "writes the face's mask (a palette PNG: edit it in any paint program, keeping the palette), then "
        "`python -m facezoo.infer model=maskgan ckpt_path=CKPT source=face.jpg mask=m_edited.png out=x.png` "
        "renders and pastes the edit at the photo's resolution (`reference=other.jpg`: style copy)."
    ),
]


def main() -> None:
    notebooks = {"tpgan_quickstart.ipynb": TPGAN, "psp_inversion.ipynb": PSP, "maskgan_editing.ipynb": MASKGAN}
    for name, cells in notebooks.items():
        for i, cell in enumerate(cells):      # stable ids: regenerating changes only what the cells say
            cell.id = f"{Path(name).stem}-{i}"
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                "language": "python"}})
        nbformat.write(nb, ROOT / "notebooks" / name)
        print("wrote", ROOT / "notebooks" / name)


if __name__ == "__main__":
    main()
