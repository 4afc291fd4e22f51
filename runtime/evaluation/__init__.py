"""The paper's two experiments: ImageNet validation error (original vs InterActive) and the linear
SVM protocol, with the dataset layouts they read."""
