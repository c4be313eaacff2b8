"""Fine-tuning: training tables, sampling, batches, losses, the loop, resume
and multi-process launch."""
