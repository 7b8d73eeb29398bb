"""The observations synthetic reports state: CheXpert's 14 (Irvin et al., AAAI 2019), in CheXpert's order.

A report sentence carries a value per observation it mentions: 1 stated, -1 hedged ("possible"), 0 negated.
Dataset writers whose labels are these observations (CheXpert, the MIMIC-CXR CheXpert table) take them from the
report; the finding modules name them in their templates.
"""

NO_FINDING = "No Finding"
ENLARGED_CARDIOMEDIASTINUM = "Enlarged Cardiomediastinum"
CARDIOMEGALY = "Cardiomegaly"
LUNG_OPACITY = "Lung Opacity"
LUNG_LESION = "Lung Lesion"
EDEMA = "Edema"
CONSOLIDATION = "Consolidation"
PNEUMONIA = "Pneumonia"
ATELECTASIS = "Atelectasis"
PNEUMOTHORAX = "Pneumothorax"
PLEURAL_EFFUSION = "Pleural Effusion"
PLEURAL_OTHER = "Pleural Other"
FRACTURE = "Fracture"
SUPPORT_DEVICES = "Support Devices"

OBSERVATIONS = (
    NO_FINDING,
    ENLARGED_CARDIOMEDIASTINUM,
    CARDIOMEGALY,
    LUNG_OPACITY,
    LUNG_LESION,
    EDEMA,
    CONSOLIDATION,
    PNEUMONIA,
    ATELECTASIS,
    PNEUMOTHORAX,
    PLEURAL_EFFUSION,
    PLEURAL_OTHER,
    FRACTURE,
    SUPPORT_DEVICES,
)
#: observations whose positive or uncertain mention rules out "No Finding"
PATHOLOGIES = tuple(name for name in OBSERVATIONS if name not in (NO_FINDING, SUPPORT_DEVICES))
