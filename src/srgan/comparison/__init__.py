"""Side-by-side comparison of models on the same inputs (`srgan compare`): the outputs,
their scores against ground truth or their differences from each other, the regions
where they disagree most, a sheet image and a self-contained HTML report."""
