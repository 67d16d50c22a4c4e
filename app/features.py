"""What a model can do in Tingxie, and why the rest is greyed out.

The engine's registry says what each model family can do (`engine.registry.FEATURES`). For the
loaded model the worker passes its family's features to the window (`ModelSummary.features`);
for a model only named somewhere (the Export dialog's field, the Tune page's base model) they
are told from its files or Hub id without loading it (`engine.registry.features_of`). Each
missing feature has one sentence, in the UI language, saying why and what to do instead: the
tooltip of whatever it greys out. ONNX export also needs the optional `onnx` packages: without
them it is greyed out saying what to install.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from engine.extras import install_hint

from .i18n import STRINGS, tr
from .plain import literal

if TYPE_CHECKING:
    from .worker import ModelSummary

__all__ = ["Capabilities", "capabilities", "grey_out"]

# How a family is named in a sentence (its registry key otherwise).
_FAMILY_NAMES = {"whisper": "Whisper", "hubert": "HuBERT", "wavlm": "WavLM"}


@dataclass(frozen=True, slots=True)
class Capabilities:
    """One model's family (registry model_type, "" when it cannot be told) and its features."""

    family: str
    features: frozenset[str]
    runtime: str = "torch"  # the loaded model's (engine.model.LoadedModel.runtime)
    # the packages ONNX export needs that are not installed, where the family has it
    onnx_missing: tuple[str, ...] = ()

    def has(self, feature: str) -> bool:
        return feature in self.features

    def why_not(self, feature: str) -> str:
        """Why this model cannot do `feature` and what to do instead ("" when it can)."""
        if self.has(feature):
            return ""
        if feature == "embeddings" and self.runtime == "onnx":
            return tr("feature.embeddings_onnx")
        if feature in ("hf_export", "onnx_export") and self.runtime == "onnx":
            return tr("feature.export_onnx")
        if feature == "onnx_export" and self.onnx_missing:
            packages = ", ".join(self.onnx_missing)
            return tr("feature.onnx_packages", packages=packages, hint=install_hint("onnx"))
        name = _FAMILY_NAMES.get(self.family, self.family or "?")
        return tr(f"feature.{feature}", family=name)


def capabilities(source: str, loaded: ModelSummary | None = None) -> Capabilities:
    """What `source` can do: the loaded model's own features when it is the loaded one (as the
    engine loaded it), else its family's as its files or Hub id tell (a source that cannot be
    told is taken for a CTC model, the default family: loading it says otherwise). ONNX export
    is taken away, saying which packages, where they are not installed."""
    from engine.registry import family_of, features_of, is_onnx_export

    onnx = is_onnx_export(source)  # an export has no PyTorch weights to export or embed from
    if loaded is not None and source == loaded.source:
        features = frozenset(loaded.features)
        if onnx:
            features -= {"hf_export", "onnx_export", "embeddings"}
        caps = Capabilities(loaded.family, features, "onnx" if onnx else loaded.runtime)
    else:
        family = family_of(source)
        runtime = "onnx" if onnx else "torch"
        caps = Capabilities(family.model_type if family else "", features_of(source), runtime)
    return _without_missing_onnx(caps)


def _without_missing_onnx(caps: Capabilities) -> Capabilities:
    """`caps` less ONNX export where the packages it needs are not installed (a plain install,
    the app bundle): offered, it would fail after the model loaded."""
    from engine.tune.formats import onnx_missing

    missing = tuple(onnx_missing()) if caps.has("onnx_export") else ()
    if not missing:
        return caps
    return replace(caps, features=caps.features - {"onnx_export"}, onnx_missing=missing)


def grey_out(target: QWidget | QAction, why: str, tooltip: str = "") -> None:
    """Enable `target` when `why` is empty (with its usual `tooltip`), else disable it with
    `why` as its tooltip."""
    target.setEnabled(not why)
    target.setToolTip(literal(why or tooltip))  # both may quote a path or a model family


# key -> (English, Simplified Chinese): why a feature is missing ({family}: the model's family)
# and what to do instead.
FEATURE_STRINGS: dict[str, tuple[str, str]] = {
    "feature.alternatives": (
        "{family} models give no runner-up characters, so there are no alternatives to pick: "
        "type the fix instead, or transcribe with a wav2vec2-family (CTC) model to get them.",
        "{family} 模型不提供候选字，所以没有可选的候选：请直接输入修改，"
        "或改用 wav2vec2 系列（CTC）模型转写以获得候选。",
    ),
    "feature.ctc_tuning": (
        "{family} models are tuned with LoRA: partial and full tuning are for wav2vec2-family "
        "(CTC) models.",
        "{family} 模型用 LoRA 微调：部分微调和完全微调只适用于 wav2vec2 系列（CTC）模型。",
    ),
    "feature.hf_export": (
        "{family} models are not re-written as a Hugging Face folder: the {family} folder is "
        "already complete, so copy it as it is, or choose a wav2vec2-family (CTC) model.",
        "{family} 模型不能导出为 Hugging Face 文件夹：{family} 模型文件夹本身已经完整，"
        "请直接复制它，或选择 wav2vec2 系列（CTC）模型。",
    ),
    "feature.onnx_export": (
        "ONNX export is for wav2vec2-family (CTC) models, not {family}: use the {family} "
        "folder as it is (it is already its runtime's format), or choose a CTC model.",
        "ONNX 导出只适用于 wav2vec2 系列（CTC）模型，不适用于 {family}："
        "请直接使用 {family} 模型文件夹（它已是其运行时的格式），或选择 CTC 模型。",
    ),
    "feature.onnx_packages": (
        "ONNX export needs the optional packages {packages}, which are not installed: install "
        "them by running {hint} in the Tingxie source folder and restart Tingxie, or export as "
        "a Hugging Face folder.",
        "ONNX 导出需要可选软件包 {packages}，但它们没有安装：请在听写的源代码文件夹中运行 "
        "{hint} 安装后重新启动听写，或导出为 Hugging Face 文件夹。",
    ),
    "feature.embeddings": (
        "Embeddings come from the layers of a wav2vec2-family (CTC) model and the loaded model "
        "is a {family} model: load a CTC model (Model → Choose model…) to export them.",
        "向量取自 wav2vec2 系列（CTC）模型的各层，而当前加载的是 {family} 模型："
        "请先加载 CTC 模型（模型 → 选择模型…）再导出向量。",
    ),
    "feature.embeddings_onnx": (
        "The loaded model is an ONNX export, which holds only the model's output, not its "
        "layers: load the PyTorch model it was exported from (Model → Choose model…) to export "
        "embeddings.",
        "当前加载的是 ONNX 导出模型，它只含模型的输出，不含各层："
        "请加载导出它的 PyTorch 模型（模型 → 选择模型…）再导出向量。",
    ),
    "feature.export_onnx": (
        "This folder is an ONNX export, which holds no PyTorch weights to write out again: "
        "export from the PyTorch model it was made from.",
        "该文件夹是 ONNX 导出模型，没有可再次导出的 PyTorch 权重：请从导出它的 PyTorch 模型导出。",
    ),
    "feature.runtime": (
        "{family} models run on their own runtime (CTranslate2), so Model → Runtime does not "
        "apply to them: it chooses how wav2vec2-family (CTC) models run.",
        "{family} 模型使用自己的运行时（CTranslate2），“模型 → 运行时”对它不起作用："
        "该选项决定 wav2vec2 系列（CTC）模型如何运行。",
    ),
    "feature.punctuation": (
        "{family} models write their own punctuation, so Add punctuation does not apply to "
        "them: it punctuates what wav2vec2-family (CTC) models transcribe.",
        "{family} 模型自己写出标点，所以“自动添加标点”对它不起作用："
        "该选项为 wav2vec2 系列（CTC）模型的转写添加标点。",
    ),
    "feature.language_model": (
        "{family} models decode with their own search, which takes no character language "
        "model, domain text or hotwords: load a wav2vec2-family (CTC) model (Model → Choose "
        "model…) to use them.",
        "{family} 模型使用自己的解码搜索，不使用字级语言模型、领域文本或热词："
        "请加载 wav2vec2 系列（CTC）模型（模型 → 选择模型…）以使用它们。",
    ),
}

STRINGS.update(FEATURE_STRINGS)
