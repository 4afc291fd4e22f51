"""The InterActive computation in torch: the forward pass, the backward pass written out as ordinary ops
(what gets exported), the independent torch.autograd reference it is verified against, reduced
precision, and the FLOP count of both. Needs torch."""
