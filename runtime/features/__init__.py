"""Feature extraction for whole datasets (the paper's SVM protocol): resumable shards, and Ray Data
for scale-out."""
