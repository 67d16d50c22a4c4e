"""UI strings of the export, Hub and embeddings dialogs and the backend menu, added to the
app's table (`app.i18n`)."""

from __future__ import annotations

from ..i18n import STRINGS

__all__ = ["EXPORT_STRINGS"]

# key -> (English, Simplified Chinese), as in app.i18n.STRINGS.
EXPORT_STRINGS: dict[str, tuple[str, str]] = {
    "action.export_model": ("Export…", "导出…"),
    "action.share_model": ("Share on the Hub…", "分享到 Hub…"),
    "action.export_embeddings": ("Export embeddings…", "导出向量…"),
    "menu.backend": ("Runtime", "运行时"),
    # ONNX Runtime for ONNX-only folders, and a large model's int8 copy where bf16 is not native
    "backend.auto": ("Automatic (chosen for this computer)", "自动（按本机选择）"),
    "backend.torch": ("PyTorch", "PyTorch"),
    "backend.onnx": ("ONNX Runtime", "ONNX Runtime"),
    "export.common.browse": ("Folder…", "文件夹…"),
    "export.common.out": ("Output folder:", "输出文件夹："),
    "export.common.run": ("Start", "开始"),
    "export.common.need_out": ("Choose an output folder first.", "请先选择输出文件夹。"),
    # Export…
    "export.title": ("Export a model", "导出模型"),
    "export.need_model": (
        "Choose a model first: a model folder, a Hub id or a tuning job.",
        "请先选择模型：模型文件夹、Hub ID 或微调任务。",
    ),
    "export.model": (
        "Model (folder, Hub id or tuning job):",
        "模型（文件夹、Hub ID 或微调任务）：",
    ),
    "export.format": ("Format:", "格式："),
    "export.format.hf": ("Hugging Face folder (safetensors)", "Hugging Face 文件夹（safetensors）"),
    "export.format.adapter": (
        "LoRA adapter (of a tuning job)",
        "LoRA 适配器（微调任务的）",
    ),
    "export.format.onnx": ("ONNX fp32", "ONNX fp32"),
    "export.format.onnx_int8": (
        "ONNX int8 (smaller; on a CPU it starts faster and uses less memory)",
        "ONNX int8（更小；在 CPU 上启动更快、占用内存更少）",
    ),
    "export.use": ("Use this model", "使用此模型"),
    "export.check": (
        "Check manifest (optional, compares CER):",
        "检查清单（可选，用于比较字错率）：",
    ),
    "export.starting": ("Starting the export to {path}…", "正在开始导出到 {path}…"),
    "export.step": ("Step {index} of {count}: {what}", "第 {index}/{count} 步：{what}"),
    "export.stage.loading": ("Loading {model}…", "正在加载 {model}…"),
    "export.stage.writing": ("Writing {path}…", "正在写入 {path}…"),
    "export.stage.quantizing": (
        "Quantizing the weights to int8…",
        "正在将权重量化为 int8…",
    ),
    "export.stage.checking": (
        "Comparing the export with PyTorch…",
        "正在将导出结果与 PyTorch 对比…",
    ),
    "export.cancel": ("Cancel export", "取消导出"),
    "export.cancelling": (
        "Cancelling: the export stops after the current step and leaves nothing behind…",
        "正在取消：导出会在当前步骤结束后停止，不会留下任何文件…",
    ),
    "export.done": ("Exported to {path}", "已导出到 {path}"),
    "export.parity_passed": (
        "The export matches PyTorch (parity: passed):",
        "导出结果与 PyTorch 一致（parity: passed）：",
    ),
    "export.parity_failed": (
        "Parity FAILED: the export does not match PyTorch; do not use it. Figures:",
        "一致性检查未通过（parity: FAILED）：导出结果与 PyTorch 不一致，请勿使用。数据：",
    ),
    "export.failed": ("Export failed: {message}", "导出失败：{message}"),
    "export.kept_failed": (
        "Not exported: the export does not match PyTorch (figures below), so it was not put in "
        "place. It is kept in {path} to look at; do not use it as a model.",
        "未导出：导出结果与 PyTorch 不一致（数据见下），所以没有放到目标位置。"
        "它保存在 {path} 供查看；请勿把它当作模型使用。",
    ),
    "export.check_rows": (
        "The rows of the check manifest left out, and why:",
        "检查清单中未使用的行及原因：",
    ),
    # Share on the Hub…
    "share.title": ("Share on the Hugging Face Hub", "分享到 Hugging Face Hub"),
    "share.model": ("Model folder or tuning job:", "模型文件夹或微调任务："),
    "share.repo": ("Repository (owner/name):", "仓库（owner/name）："),
    "share.private": ("Private repository", "私有仓库"),
    "share.adapter": ("Share the LoRA adapter only", "只分享 LoRA 适配器"),
    "share.license": ("License:", "许可证："),
    "share.license_tip": (
        "The license the model card states: a Hub license id such as apache-2.0 or "
        "cc-by-nc-4.0. Filled in with the one this model's card or its base model's card "
        "states; left empty, that one is used, or none is claimed when neither states one.",
        "模型卡注明的许可证：Hub 的许可证 ID，例如 apache-2.0 或 cc-by-nc-4.0。"
        "已填入此模型的卡或其基础模型的卡所注明的许可证；留空时使用该许可证，两者都未注明时不声明许可证。",
    ),
    "share.license_unknown": (
        "unknown (neither this model's card nor its base model's states one)",
        "未知（此模型的卡及其基础模型的卡都未注明）",
    ),
    "share.domain_lm": (
        "Include the domain language model (built from your training transcripts)",
        "包含领域语言模型（由你的训练转写文本生成）",
    ),
    "share.domain_lm_tip": (
        "Off by default: this language model is built from your training transcripts, and "
        "anyone who downloads the model can read those sentences back from it word for word. "
        "Tick it only if the transcripts may be made public.",
        "默认不包含：此语言模型由你的训练转写文本生成，下载模型的任何人都能从中逐字读出这些句子。"
        "只有在这些转写文本可以公开时才勾选。",
    ),
    "share.token": ("Access token:", "访问令牌："),
    "share.sign_in": ("Sign in", "登录"),
    "share.signed_in": (
        "Token saved in the system keyring (never in Tingxie's settings).",
        "令牌已保存在系统钥匙串中（不会写入听写的设置）。",
    ),
    "share.keyring_failed": (
        "The system keyring could not store the token ({detail}); set HF_TOKEN instead.",
        "系统钥匙串无法保存令牌（{detail}）；请改为设置 HF_TOKEN。",
    ),
    "share.show_plan": ("Show what would be uploaded", "显示将要上传的内容"),
    "share.plan": (
        "{count} files to {repo_id} from {folder}:",
        "将从 {folder} 上传 {count} 个文件到 {repo_id}：",
    ),
    "share.left_out": (
        "Left out (folders inside it, such as other exports):",
        "不上传（其中的子文件夹，例如其他导出）：",
    ),
    "share.upload": ("Upload", "上传"),
    "share.upload_needs_plan": (
        "Click “{show}” first: Upload sends exactly the files it lists. A change to the model, "
        "repository or options asks for it again.",
        "请先点击“{show}”：上传只发送其中列出的文件。更改模型、仓库或选项后需要重新点击。",
    ),
    "share.upload_busy": (
        "Uploading to {repo_id}: wait until it finishes.",
        "正在上传到 {repo_id}，请等待完成。",
    ),
    "share.upload_again": (
        "Uploaded. To upload again, click “{show}” again.",
        "已上传。如需再次上传，请重新点击“{show}”。",
    ),
    "share.uploading": ("Uploading to {repo_id}…", "正在上传到 {repo_id}…"),
    "share.done": ("Uploaded: {url}", "已上传：{url}"),
    "share.failed": ("Not uploaded: {message}", "未上传：{message}"),
    "share.push_later": (
        "Or upload it later from a terminal: {command}",
        "也可以稍后在终端中上传：{command}",
    ),
    # Export embeddings…
    "embed.title": ("Export embeddings", "导出向量"),
    "embed.file": ("Audio:", "音频："),
    "embed.no_file": (
        "Open or record a file first: the embeddings are of the file shown.",
        "请先打开或录制一个文件：导出的是当前显示文件的向量。",
    ),
    "embed.layer": ("Layer (-1 = last):", "层（-1 = 最后一层）："),
    "embed.pool": ("Vectors:", "向量："),
    "embed.pool.none": ("one per 20 ms frame, with times", "每 20 毫秒一帧一个，附时间"),
    "embed.pool.mean": ("one for the whole file (mean)", "整个文件一个（平均）"),
    "embed.format": ("File format:", "文件格式："),
    "embed.running": ("Computing the vectors…", "正在计算向量…"),
    "embed.done": ("Wrote {path}", "已写入 {path}"),
    "embed.failed": ("Not written: {message}", "未写入：{message}"),
}

STRINGS.update(EXPORT_STRINGS)
