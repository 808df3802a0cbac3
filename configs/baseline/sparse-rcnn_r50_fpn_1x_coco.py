# Baseline row of the reference table: MMDetection's own config, unchanged.
_base_ = 'mmdet::sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['yolor_ray.registrations'], allow_failed_imports=False)
