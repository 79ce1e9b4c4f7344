"""Training data: patch datasets of images, windows of clips, the degradations that make
LR inputs from HR, and the dataset preparation commands (`srgan dataset ...`)."""
