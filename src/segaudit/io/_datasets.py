"""Built-in class lists, palettes and label maps of public datasets (VOC, Cityscapes, ADE20K)."""

from __future__ import annotations

from segaudit._validation import param_error
from segaudit.io._classes import ClassInfo

__all__ = ["BUILTIN_CLASSES", "BUILTIN_LABEL_MAPS", "builtin_classes", "builtin_label_map"]

Color = tuple[int, int, int]

_VOC_NAMES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]

# Cityscapes: raw label id -> (name, train id, colour); train id 255 is void.
_CITYSCAPES: tuple[tuple[int, str, int, Color], ...] = (
    (0, "unlabeled", 255, (0, 0, 0)),
    (1, "ego vehicle", 255, (0, 0, 0)),
    (2, "rectification border", 255, (0, 0, 0)),
    (3, "out of roi", 255, (0, 0, 0)),
    (4, "static", 255, (0, 0, 0)),
    (5, "dynamic", 255, (111, 74, 0)),
    (6, "ground", 255, (81, 0, 81)),
    (7, "road", 0, (128, 64, 128)),
    (8, "sidewalk", 1, (244, 35, 232)),
    (9, "parking", 255, (250, 170, 160)),
    (10, "rail track", 255, (230, 150, 140)),
    (11, "building", 2, (70, 70, 70)),
    (12, "wall", 3, (102, 102, 156)),
    (13, "fence", 4, (190, 153, 153)),
    (14, "guard rail", 255, (180, 165, 180)),
    (15, "bridge", 255, (150, 100, 100)),
    (16, "tunnel", 255, (150, 120, 90)),
    (17, "pole", 5, (153, 153, 153)),
    (18, "polegroup", 255, (153, 153, 153)),
    (19, "traffic light", 6, (250, 170, 30)),
    (20, "traffic sign", 7, (220, 220, 0)),
    (21, "vegetation", 8, (107, 142, 35)),
    (22, "terrain", 9, (152, 251, 152)),
    (23, "sky", 10, (70, 130, 180)),
    (24, "person", 11, (220, 20, 60)),
    (25, "rider", 12, (255, 0, 0)),
    (26, "car", 13, (0, 0, 142)),
    (27, "truck", 14, (0, 0, 70)),
    (28, "bus", 15, (0, 60, 100)),
    (29, "caravan", 255, (0, 0, 90)),
    (30, "trailer", 255, (0, 0, 110)),
    (31, "train", 16, (0, 80, 100)),
    (32, "motorcycle", 17, (0, 0, 230)),
    (33, "bicycle", 18, (119, 11, 32)),
)

_ADE20K_NAMES = [
    "wall",
    "building",
    "sky",
    "floor",
    "tree",
    "ceiling",
    "road",
    "bed",
    "windowpane",
    "grass",
    "cabinet",
    "sidewalk",
    "person",
    "earth",
    "door",
    "table",
    "mountain",
    "plant",
    "curtain",
    "chair",
    "car",
    "water",
    "painting",
    "sofa",
    "shelf",
    "house",
    "sea",
    "mirror",
    "rug",
    "field",
    "armchair",
    "seat",
    "fence",
    "desk",
    "rock",
    "wardrobe",
    "lamp",
    "bathtub",
    "railing",
    "cushion",
    "base",
    "box",
    "column",
    "signboard",
    "chest of drawers",
    "counter",
    "sand",
    "sink",
    "skyscraper",
    "fireplace",
    "refrigerator",
    "grandstand",
    "path",
    "stairs",
    "runway",
    "case",
    "pool table",
    "pillow",
    "screen door",
    "stairway",
    "river",
    "bridge",
    "bookcase",
    "blind",
    "coffee table",
    "toilet",
    "flower",
    "book",
    "hill",
    "bench",
    "countertop",
    "stove",
    "palm",
    "kitchen island",
    "computer",
    "swivel chair",
    "boat",
    "bar",
    "arcade machine",
    "hovel",
    "bus",
    "towel",
    "light",
    "truck",
    "tower",
    "chandelier",
    "awning",
    "streetlight",
    "booth",
    "television receiver",
    "airplane",
    "dirt track",
    "apparel",
    "pole",
    "land",
    "bannister",
    "escalator",
    "ottoman",
    "bottle",
    "buffet",
    "poster",
    "stage",
    "van",
    "ship",
    "fountain",
    "conveyer belt",
    "canopy",
    "washer",
    "plaything",
    "swimming pool",
    "stool",
    "barrel",
    "basket",
    "waterfall",
    "tent",
    "bag",
    "minibike",
    "cradle",
    "oven",
    "ball",
    "food",
    "step",
    "tank",
    "trade name",
    "microwave",
    "pot",
    "animal",
    "bicycle",
    "lake",
    "dishwasher",
    "screen",
    "blanket",
    "sculpture",
    "hood",
    "sconce",
    "vase",
    "traffic light",
    "tray",
    "ashcan",
    "fan",
    "pier",
    "crt screen",
    "plate",
    "monitor",
    "bulletin board",
    "shower",
    "radiator",
    "glass",
    "clock",
    "flag",
]


def voc_colormap(n: int = 256) -> list[Color]:
    """Return the Pascal VOC palette: colour ``k`` spreads the bits of ``k`` over r, g, b.

    Examples
    --------
    >>> voc_colormap()[:3], voc_colormap()[255]
    ([(0, 0, 0), (128, 0, 0), (0, 128, 0)], (224, 224, 192))
    """
    colors = []
    for k in range(n):
        rgb = [0, 0, 0]
        value = k
        for shift in range(7, -1, -1):
            for channel in range(3):
                rgb[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        colors.append((rgb[0], rgb[1], rgb[2]))
    return colors


def _cityscapes_train() -> ClassInfo:
    train = sorted((t, name, color) for _, name, t, color in _CITYSCAPES if t != 255)
    return ClassInfo(tuple(n for _, n, _ in train), tuple(c for _, _, c in train))


BUILTIN_CLASSES = ("voc", "cityscapes", "ade20k")
"""Names accepted by `builtin_classes` (and by ``--classes``)."""

BUILTIN_LABEL_MAPS = ("cityscapes",)
"""Names accepted by `builtin_label_map` (and by ``--label-map``)."""


def builtin_classes(name: str) -> ClassInfo:
    """Return the class list (and palette, where the dataset has one) of a public dataset.

    Parameters
    ----------
    name : {"voc", "cityscapes", "ade20k"}
        ``"voc"``: the 21 Pascal VOC classes with the VOC palette (255 is void).
        ``"cityscapes"``: the 19 train ids with their colours (use the
        ``"cityscapes"`` label map for masks of raw label ids).
        ``"ade20k"``: the 150 SceneParse150 classes, ids after reducing the zero
        label (raw id 1, ``wall``, is class 0); no palette.

    Examples
    --------
    >>> info = builtin_classes("cityscapes")
    >>> info.num_classes, info.names[13], info.colors[13]
    (19, 'car', (0, 0, 142))
    >>> builtin_classes("ade20k").num_classes, builtin_classes("voc").names[15]
    (150, 'person')
    """
    if name == "voc":
        return ClassInfo(tuple(_VOC_NAMES), tuple(voc_colormap(len(_VOC_NAMES))))
    if name == "cityscapes":
        return _cityscapes_train()
    if name == "ade20k":
        return ClassInfo(tuple(_ADE20K_NAMES))
    raise param_error("classes", "builtin_classes", f"one of {', '.join(BUILTIN_CLASSES)}", name)


def builtin_label_map(name: str) -> dict[int, int]:
    """Return a public dataset's map of raw label ids to class ids (void ids left out).

    Parameters
    ----------
    name : {"cityscapes"}
        The 34 raw ids of ``*_gtFine_labelIds.png`` to the 19 train ids; the 15
        ids without a train id are left out, so they become the ignore index.

    Examples
    --------
    >>> m = builtin_label_map("cityscapes")
    >>> m[7], m[26], 0 in m, len(m)
    (0, 13, False, 19)
    """
    if name == "cityscapes":
        return {raw: train for raw, _, train, _ in _CITYSCAPES if train != 255}
    expected = f"one of {', '.join(BUILTIN_LABEL_MAPS)}"
    raise param_error("label_map", "builtin_label_map", expected, name)
