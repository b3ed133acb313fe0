"""Per-atom attributions of molplat models through Captum (saliency, input x gradient,
integrated gradients, CAM and Grad-CAM), written as CSV tables and coloured drawings."""
