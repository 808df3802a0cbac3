"""``yolor-ray reproduce``: the reference table's rows x baseline/YOLOR x seeds as training runs, and their
table with its noise. ``spec`` (the settings), ``plan`` (checked, nothing written), ``estimate``
(cost before cluster time), ``calibrate`` (measured seconds per iteration), ``launch`` (the runs
through one Tune scheduler), ``summary`` (the paired intervals)."""
