# YOLOR row of the reference table: the baseline plus implicit knowledge (docs/implicit.md).
# fpn: ImplicitA on every FPN output level (the paper's iFA); pred: ImplicitM on the
# outputs of every head's final cls / reg / centerness / mask-logit layers (iPR).
_base_ = '../baseline/mask-rcnn_r50_fpn_1x_coco.py'
model = dict(
    type='YOLOR',
    detector='MaskRCNN',
    implicit=dict(
        placements=['fpn', 'pred'],
        modeling='vector',
        init=dict(add=dict(mean=0.0, std=0.02), multiply=dict(mean=1.0, std=0.02))))
# YOLOR's recipe: implicit tensors out of weight decay (docs/implicit.md#weight-decay).
optim_wrapper = dict(constructor='YOLOROptimWrapperConstructor')
