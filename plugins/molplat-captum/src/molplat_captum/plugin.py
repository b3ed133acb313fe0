"""Registers the Captum explainers with molplat. Imports neither torch nor Captum."""
from __future__ import annotations

import molplat
from molplat.specs import ComponentSpec, Setting

MOLPLAT_API = ">=1.0,<2"

CAPTUM = ("N. Kokhlikyan et al., Captum: A unified and generic model interpretability library for PyTorch, "
          "arXiv:2009.07896 (2020)")
CITATIONS = {
    "saliency": "K. Simonyan, A. Vedaldi, A. Zisserman, Deep inside convolutional networks: visualising image "
                "classification models and saliency maps, arXiv:1312.6034 (2013)",
    "input_x_gradient": "A. Shrikumar, P. Greenside, A. Shcherbina, A. Kundaje, Not just a black box: learning "
                        "important features through propagating activation differences, arXiv:1605.01713 (2016)",
    "integrated_gradients": "M. Sundararajan, A. Taly, Q. Yan, Axiomatic attribution for deep networks, "
                            "ICML 2017, arXiv:1703.01365",
    "cam": "B. Zhou, A. Khosla, A. Lapedriza, A. Oliva, A. Torralba, Learning deep features for discriminative "
           "localization, CVPR 2016; for graphs: P. E. Pope et al., Explainability methods for graph convolutional "
           "neural networks, CVPR 2019",
    "grad_cam": "R. R. Selvaraju et al., Grad-CAM: visual explanations from deep networks via gradient-based "
                "localization, ICCV 2017; for graphs: P. E. Pope et al., CVPR 2019",
}
SUMMARIES = {
    "saliency": "per-atom saliency: length of the gradient of each target by atom embedding and by position",
    "input_x_gradient": "per-atom input x gradient (Captum InputXGradient / LayerGradientXActivation)",
    "integrated_gradients": "per-atom integrated gradients from a zero embedding or a scaled geometry "
                            "(Captum IntegratedGradients / LayerIntegratedGradients)",
    "cam": "per-atom class activation map on the element embedding (Captum LayerGradCam, signed)",
    "grad_cam": "per-atom Grad-CAM on the element embedding (Captum LayerGradCam with ReLU)",
}
#: explaining thousands of structures takes long and draws nobody reads
MAX_STRUCTURES = 10_000


def _settings(method: str) -> tuple[Setting, ...]:
    layer_only = method in ("cam", "grad_cam")
    common = (
        Setting("inputs", "list[str]", ["numbers"] if layer_only else ["numbers", "positions"],
                "what to attribute to: numbers (the atoms' elements, through the model's embedding layer) and/or "
                "positions" + (" (this method: numbers only)" if layer_only else ""), choices=("numbers", "positions")),
        Setting("split", "str", "test", "which split's structures to explain", choices=("train", "val", "test")),
        Setting("num_structures", "int", 8, "how many structures of the split to explain (the first ones)",
                minimum=1, maximum=MAX_STRUCTURES),
        Setting("num_drawings", "int", 4, "how many of them to draw as PNG (at most num_structures)",
                minimum=0, maximum=MAX_STRUCTURES),
    )
    if method != "integrated_gradients":
        return common
    return common + (
        Setting("n_steps", "int", 50, "integration steps (Gauss-Legendre); more steps, smaller completeness error",
                minimum=2, maximum=1000),
        Setting("positions_baseline_scale", "float", 2.0, "baseline geometry for positions: the centred positions "
                "times this factor (> 1: spread out towards isolated atoms; 0: every atom at the centre, where "
                "distance features are steep: raise n_steps); the embedding baseline is the zero embedding",
                minimum=0.0, maximum=10.0),
    )


@molplat.hookimpl
def molplat_explainers() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name=method,
            kind="explainer",
            factory=f"molplat_captum.explainer:{method}",
            summary=SUMMARIES[method],
            settings=_settings(method),
            citation=f"{CITATIONS[method]}; {CAPTUM}",
        )
        for method in ("saliency", "input_x_gradient", "integrated_gradients", "cam", "grad_cam")
    ]
