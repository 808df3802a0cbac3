# The demo's ATSS with bench.iter_times' hook: one timing code path for `yolor-ray train`
# (inside the Ray Train worker) and for a plain MMEngine Runner.
_base_ = '../../configs/baseline/atss_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['yolor_ray.registrations', 'bench.iter_times'], allow_failed_imports=False)
custom_hooks = [dict(type='BenchIterTimes')]
