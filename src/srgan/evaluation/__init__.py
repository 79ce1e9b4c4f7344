"""One evaluation protocol for `srgan eval`, `srgan psnr`, comparisons and every trainer's
validation: MATLAB-bicubic LR from modcropped HR, the model untiled, PSNR/SSIM on the Y
channel with `scale` pixels of border removed (BasicSR's conventions), on image folders
and on clips (per-frame scores averaged per clip). Files are taken in natural order.

    from srgan.evaluation import evaluate_images, dataset_images
    (table,) = evaluate_images([model], dataset_images(Path("Set5")), scale=4)
    table.mean_psnr, [(s.name, s.psnr) for s in table.images]

`iter_image_results` yields each image's LR input, every model's output and score, for
callers that also want the pictures (comparison sheets, validation grids);
`evaluate_pairs` / `iter_pair_results` score given LR inputs (`lr_pairs`) (real or synthetic
degradations) against their HR images instead of making bicubic ones.
"""

from srgan.evaluation.clips import (
    ClipEvaluation,
    ClipSelection,
    dataset_clips,
    evaluate_clips,
    holds_clips,
)
from srgan.evaluation.grids import comparison_grid
from srgan.evaluation.images import (
    ImageResult,
    compare_paths,
    dataset_images,
    evaluate_images,
    evaluate_pairs,
    iter_image_results,
    iter_pair_results,
    lr_pairs,
    pair_paths,
    score_model,
)
from srgan.evaluation.scores import ClipScore, ImageScore, ScoreTable, score

__all__ = [
    "ClipEvaluation",
    "ClipScore",
    "ClipSelection",
    "ImageResult",
    "ImageScore",
    "ScoreTable",
    "compare_paths",
    "comparison_grid",
    "dataset_clips",
    "dataset_images",
    "evaluate_clips",
    "evaluate_images",
    "evaluate_pairs",
    "holds_clips",
    "iter_image_results",
    "iter_pair_results",
    "lr_pairs",
    "pair_paths",
    "score",
    "score_model",
]
