"""Macro transfer learning, micro fine-tuning, the SVM, and the data they train on."""
from merlib.training.crops import CropSet, load_crop_set, save_crop_set, synthetic_crop_set
from merlib.training.finetune import finetune
from merlib.training.svm import fit_svm
from merlib.training.transfer import TransferResult, load_transfer, train_macro

__all__ = ["CropSet", "TransferResult", "finetune", "fit_svm", "load_crop_set", "load_transfer",
           "save_crop_set", "synthetic_crop_set", "train_macro"]
