"""Networks (timm backbones) and feature extraction."""
from merlib.models.backbone import (BACKBONES, conv_stages, count_parameters, create_backbone,
                                    feature_extractor_state, input_normalisation, load_feature_extractor)
from merlib.models.features import embed

__all__ = ["BACKBONES", "conv_stages", "count_parameters", "create_backbone", "embed",
           "feature_extractor_state", "input_normalisation", "load_feature_extractor"]
