# Baseline row of the reference table: MMDetection's own config, unchanged.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['yolor_ray.registrations'], allow_failed_imports=False)
