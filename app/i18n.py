"""UI strings in Simplified Chinese and English, switchable at run time.

A plain table keeps every string and its translation side by side, so a missing translation
shows up in review (and in `tests/test_app_i18n.py`) rather than at run time. Widgets call
`tr("key")` when they (re)build their text; `set_language` switches the table, and Qt's own
texts (standard buttons, file dialogs) with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QTranslator
from PySide6.QtWidgets import QAbstractButton, QWidget

__all__ = [
    "LANGUAGES",
    "STRINGS",
    "Language",
    "LiveText",
    "Message",
    "install_qt_translations",
    "language",
    "retranslate_qt_buttons",
    "set_language",
    "tr",
]

Language = Literal["zh", "en"]
LANGUAGES: dict[Language, str] = {"zh": "简体中文", "en": "English"}

# key -> (English, Simplified Chinese). Placeholders use str.format names.
STRINGS: dict[str, tuple[str, str]] = {
    "app.title": ("Tingxie", "听写"),
    "page.transcript": ("Transcript", "转写"),
    "page.files": ("Files", "文件"),
    "menu.file": ("&File", "文件(&F)"),
    "menu.model": ("&Model", "模型(&M)"),
    "menu.language": ("&Language", "语言(&L)"),
    "menu.view": ("&View", "视图(&V)"),
    "menu.help": ("&Help", "帮助(&H)"),
    "action.about": ("&About Tingxie", "关于听写(&A)"),
    "action.record": ("Record", "录音"),
    "action.stop": ("Stop", "停止"),
    "action.pause": ("Pause", "暂停"),
    "action.resume": ("Resume", "继续"),
    "action.open": ("Open audio or video…", "打开音频或视频…"),
    "action.save": ("Save transcript as…", "转写另存为…"),
    "action.quit": ("Quit", "退出"),
    "quit.files_busy": (
        "{count} file(s) in the Files panel are still being transcribed or waiting. Quitting "
        "stops them, and the next start does not queue them again: open them again then "
        "(recordings and watch-folder files come back by themselves). Quit anyway?",
        "“文件”面板中还有 {count} 个文件正在转写或等待。退出会停止它们，下次启动也不会重新排队："
        "届时请重新打开它们（录音和监视文件夹中的文件会自动回来）。仍然退出吗？",
    ),
    "quit.anyway": ("Quit anyway", "仍然退出"),
    "action.choose_model": ("Choose model…", "选择模型…"),
    "action.use_demo": ("Use the demo model", "使用演示模型"),
    "action.use_whisper": ("Use Whisper-base (real voices)", "使用 Whisper-base（真人语音）"),
    "action.cancel_all": ("Cancel all", "全部取消"),
    "action.cancel": ("Cancel", "取消"),
    "action.refresh_devices": ("Look for microphones again", "重新查找麦克风"),
    "action.show_live": ("Show live transcript", "显示实时转写"),
    "label.device": ("Microphone:", "麦克风："),
    "label.default_device": ("System default", "系统默认"),
    "label.no_device": ("No microphone found", "未找到麦克风"),
    "label.elapsed": ("Elapsed {time}", "时长 {time}"),
    "label.threshold": ("Doubt below:", "低于此值存疑："),
    "legend.high": ("sure (≥ {value:.0%})", "可信（≥ {value:.0%}）"),
    "legend.medium": ("check ({low:.0%}–{high:.0%})", "待查（{low:.0%}–{high:.0%}）"),
    "legend.low": ("doubtful (< {value:.0%})", "存疑（< {value:.0%}）"),
    "legend.tail": ("not final yet", "尚未确定"),
    "tooltip.char": (
        "“{text}”  confidence {confidence:.0%}\n{start:.2f}–{end:.2f} s",
        "“{text}”  置信度 {confidence:.0%}\n{start:.2f}–{end:.2f} 秒",
    ),
    "tooltip.alternatives": ("Alternatives: {items}", "候选：{items}"),
    "tooltip.no_alternatives": ("No alternatives", "无候选"),
    "status.no_model": ("No model loaded", "未加载模型"),
    "status.loading_model": ("Loading model {model}…", "正在加载模型 {model}…"),
    "status.preparing_model": (
        "Preparing an int8 copy of {model} for this CPU (once, about a minute)…",
        "正在为本机 CPU 准备 {model} 的 int8 副本（仅此一次，约一分钟）…",
    ),
    "status.model_ready": (
        "Model: {model} ({device}, {dtype})",
        "模型：{model}（{device}，{dtype}）",
    ),
    "status.demo_model": (
        "DEMO model: trained on synthetic speech only, not for real voices",
        "演示模型：仅用合成语音训练，不适用于真人语音",
    ),
    "status.fallback_model": (
        "Tingxie opened {model} instead, which is on this computer. “Keep it” makes it the model "
        "Tingxie starts with; “Choose model…” picks another.",
        "已改用本机已有的 {model}。“保留”后每次启动都用它；“选择模型…”可换成别的模型。",
    ),
    "action.keep_model": ("Keep it", "保留"),
    "status.recording": ("Recording…", "正在录音…"),
    "status.live_behind": (
        "Recording… the live text is {seconds:.0f} s behind: this computer runs this model more "
        "slowly than you speak. The recording is whole and its text will all come, at the latest "
        "when you stop; a faster runtime (Model → Runtime) or a smaller model keeps up.",
        "正在录音… 实时文字落后 {seconds:.0f} 秒：这台电脑运行此模型慢于说话。录音完整保存，"
        "文字都会出来，最晚在停止录音时；更快的运行时（模型 → 运行时）或更小的模型能跟上。",
    ),
    "action.punctuation": ("Add punctuation", "自动添加标点"),
    # Model menu choices a model family ignores (app.window greys them out, saying why)
    # A model that cannot run on the runtime chosen in Model → Runtime
    "runtime.failed_kept": (
        "{model} could not be loaded on {runtime}: {message}\n\nModel → Runtime is back on "
        "{back}, and {current} stays in use.",
        "无法在 {runtime} 上加载 {model}：{message}\n\n“模型 → 运行时”已改回“{back}”，"
        "继续使用 {current}。",
    ),
    "runtime.failed": (
        "{model} could not be loaded on {runtime}: {message}\n\nModel → Runtime is back on {back}.",
        "无法在 {runtime} 上加载 {model}：{message}\n\n“模型 → 运行时”已改回“{back}”。",
    ),
    # Model → Language model (app.decoding)
    "menu.language_model": ("Language model", "语言模型"),
    "action.use_lm": ("Use the language model (beam search)", "使用语言模型（束搜索）"),
    "action.domain_text": ("Domain text…", "领域文本…"),
    "action.domain_text_set": ("Domain text: {name}…", "领域文本：{name}…"),
    "action.clear_domain_text": ("Clear domain text", "清除领域文本"),
    "action.hotwords": ("Hotwords…", "热词…"),
    "action.hotwords_set": ("Hotwords: {name}…", "热词：{name}…"),
    "action.clear_hotwords": ("Clear hotwords", "清除热词"),
    "lm.tooltip": (
        "Beam search picks among similar-sounding characters with a language model: the "
        "model's own, if it has one, mixed with your domain text, and favouring your hotwords. "
        "Off: faster greedy decoding.",
        "束搜索借助语言模型在同音字之间选择：使用模型自带的语言模型（如有），"
        "并混入你的领域文本、偏向你的热词。关闭后使用更快的贪心解码。",
    ),
    "lm.domain_text_tip": (
        "A UTF-8 text of your field, one sentence a line (notes, past transcripts): its words "
        "and phrases are favoured, also where the audio sounds alike but the model heard "
        "other characters.",
        "你所在领域的 UTF-8 文本，每行一句（笔记、以往的转写稿）：其中的词语会被优先选用，"
        "读音相同而模型听成别的字时也是如此。",
    ),
    "lm.hotwords_tip": (
        "A UTF-8 list of names and terms, one a line, optionally followed by a tab and a "
        "weight (e.g. 阿莫西林, the Tab key, 4): they are favoured where the audio allows.",
        "UTF-8 名称和术语列表，每行一个，可在后面加制表符和权重（例如：阿莫西林、Tab 键、4）："
        "在读音相符时优先选用。",
    ),
    "lm.greedy_why": (
        "Turn on “Use the language model” first: greedy decoding uses no domain text or hotwords.",
        "请先打开“使用语言模型”：贪心解码不使用领域文本和热词。",
    ),
    "dialog.domain_text": ("Choose a domain text", "选择领域文本"),
    "dialog.hotwords": ("Choose a hotword list", "选择热词列表"),
    "dialog.text_files": ("Text files", "文本文件"),
    "dialog.all_files": ("All files", "所有文件"),
    "decoding.domain_text_failed": (
        "The domain text is not used: {message}\n\nFix the file, or choose another or clear "
        "it in Model → Language model. Files and recordings are transcribed without it until "
        "then.",
        "未使用领域文本：{message}\n\n请修正该文件，或在“模型 → 语言模型”中另选文件或清除它。"
        "在此之前，文件和录音的转写不使用它。",
    ),
    "decoding.hotwords_failed": (
        "The hotwords are not used: {message}\n\nFix the file, or choose another or clear it "
        "in Model → Language model. Files and recordings are transcribed without them until "
        "then.",
        "未使用热词：{message}\n\n请修正该文件，或在“模型 → 语言模型”中另选文件或清除它。"
        "在此之前，文件和录音的转写不使用热词。",
    ),
    "decoding.language_model_failed": (
        "The language model is not used: {message}\n\nFiles and recordings are transcribed "
        "with greedy decoding; turn off “Use the language model” in Model → Language model "
        "to stop this message.",
        "未使用语言模型：{message}\n\n文件和录音改用贪心解码转写；"
        "在“模型 → 语言模型”中关闭“使用语言模型”即可不再显示此消息。",
    ),
    "decoding.model_lm_failed": (
        "The model's own language model is not used: {message}\n\nFiles and recordings are "
        "transcribed without it; your domain text and hotwords (Model → Language model) still "
        "apply. To use it again, mend the model folder and choose it again (Model → Choose "
        "model…).",
        "未使用模型自带的语言模型：{message}\n\n文件和录音的转写不使用它；"
        "“模型 → 语言模型”中的领域文本和热词照常使用。要重新使用它，"
        "请修复模型文件夹后重新选择它（模型 → 选择模型…）。",
    ),
    "status.paused": ("Paused", "已暂停"),
    "status.saved": ("Recording saved to {path}", "录音已保存到 {path}"),
    "status.not_saved": (
        "Nothing was recorded: {path} could not be written (see the message). Free some space "
        "on that disk and make its folder writable, then record again.",
        "没有录下任何内容：无法写入 {path}（见提示）。请释放该磁盘的空间并确保其文件夹可写，"
        "然后重新录音。",
    ),
    "status.saved_part": (
        "Only the first {seconds:.1f} s of the recording reached the disk: they are saved in "
        "{path} (see the message).",
        "录音只有前 {seconds:.1f} 秒写入了磁盘：已保存到 {path}（见提示）。",
    ),
    "status.saved_unrepaired": (
        "The recording could not be finished: what reached the disk is in {path} and is "
        "offered for repair at the next start (see the message).",
        "录音未能完成：已写入磁盘的部分在 {path} 中，下次启动时会提示修复（见提示）。",
    ),
    "status.stopping": (
        "Stopped: finishing the recording {path} and its text…",
        "已停止：正在完成录音 {path} 及其文字…",
    ),
    "status.recording_no_model": (
        "Recording… No model is loaded: the text will follow once one is.",
        "正在录音…尚未加载模型：加载模型后才会有文字。",
    ),
    "status.saved_untranscribed": (
        "Recording saved to {path}. No model was loaded while recording: it is transcribed "
        "once one is (Files panel).",
        "录音已保存到 {path}。录音时尚未加载模型：加载模型后会自动转写（见“文件”面板）。",
    ),
    "status.saved_live_failed": (
        "Recording saved to {path}. The live transcription failed: the recording is being "
        "transcribed from its file (Files panel).",
        "录音已保存到 {path}。实时转写失败：正在从录音文件重新转写（见“文件”面板）。",
    ),
    "queue.file": ("File", "文件"),
    "queue.progress": ("Progress", "进度"),
    "queue.status": ("Status", "状态"),
    "queue.waiting": ("waiting", "等待中"),
    "queue.running": ("transcribing", "转写中"),
    "queue.done": ("done", "完成"),
    "queue.cancelled": ("cancelled", "已取消"),
    "queue.failed": ("failed: {message}", "失败：{message}"),
    "queue.already": (
        "{name} is already in the Files panel, waiting or being transcribed: not added again "
        "({count} file(s) in all)",
        "{name} 已在“文件”面板中等待或正在转写：未重复添加（共 {count} 个文件）",
    ),
    "dialog.error": ("Tingxie: error", "听写：错误"),
    "app.no_data_folder": (
        "Tingxie cannot make its data folder {path} ({detail}), where recordings and "
        "transcripts are kept: make that path a writable folder, or set TINGXIE_DATA_DIR to "
        "one, then start Tingxie again.",
        "听写无法创建数据文件夹 {path}（{detail}），录音和转写都保存在那里：请让该路径成为可写的"
        "文件夹，或把 TINGXIE_DATA_DIR 设为某个可写文件夹，然后重新启动听写。",
    ),
    "settings.not_saved": (
        "Preferences cannot be saved to {path}: make the file and its folder writable. Changes "
        "hold until Tingxie closes.",
        "无法把偏好设置保存到 {path}：请让该文件及其文件夹可写。修改在关闭听写前仍然有效。",
    ),
    "settings.damaged": (
        "The preferences file {path} was damaged (it did not read as settings): what could be "
        "read is used, and the rest is at its default. The file as it was is kept as {copy}. "
        "Check your model, language and other choices; the next change writes the file anew.",
        "偏好设置文件 {path} 已损坏（无法按设置读取）：能读出的设置照常使用，其余恢复为默认值。"
        "损坏前的文件已保存为 {copy}。请检查模型、语言等选择；下次修改会重新写入该文件。",
    ),
    "settings.damaged_uncopied": (
        "The preferences file {path} was damaged (it did not read as settings): what could be "
        "read is used, and the rest is at its default. Check your model, language and other "
        "choices; the next change writes the file anew.",
        "偏好设置文件 {path} 已损坏（无法按设置读取）：能读出的设置照常使用，其余恢复为默认值。"
        "请检查模型、语言等选择；下次修改会重新写入该文件。",
    ),
    "dialog.offer_demo": (
        "{message}\n\nYou can choose a local model folder, or use the demo model shipped with "
        "Tingxie (trained on synthetic speech only: expect poor results on real voices).",
        "{message}\n\n可以选择本地模型文件夹，或使用听写自带的演示模型（仅用合成语音训练，对真人语音效果较差）。",
    ),
    "dialog.no_demo": (
        "{message}\n\nChoose a local model folder (Model → Choose model…).",
        "{message}\n\n请选择本地模型文件夹（模型 → 选择模型…）。",
    ),
    # The ways out with Whisper-base in the model cache: it first (it understands real voices)
    "dialog.offer_whisper": (
        "{message}\n\nYou can use Whisper-base, which is on this computer and understands real "
        "voices, or choose a local model folder.",
        "{message}\n\n可以使用本机已有的 Whisper-base（适用于真人语音），或选择本地模型文件夹。",
    ),
    "dialog.offer_whisper_demo": (
        "{message}\n\nYou can use Whisper-base, which is on this computer and understands real "
        "voices; choose a local model folder; or use the demo model shipped with Tingxie "
        "(trained on synthetic speech only: expect poor results on real voices).",
        "{message}\n\n可以使用本机已有的 Whisper-base（适用于真人语音），选择本地模型文件夹，"
        "或使用听写自带的演示模型（仅用合成语音训练，对真人语音效果较差）。",
    ),
    # The demo left out of the ways out only because the runtime chosen cannot run it
    "dialog.demo_runtime": (
        "The demo model shipped with Tingxie has no model.onnx, so it does not run on ONNX "
        "Runtime: set Model → Runtime to “{auto}” to use it.",
        "听写自带的演示模型没有 model.onnx，无法用 ONNX Runtime 运行：把“模型 → 运行时”设为"
        "“{auto}”后即可使用。",
    ),
    "dialog.microphone": ("Microphone problem", "麦克风问题"),
    "status.no_microphone": ("Recording is off: {message}", "无法录音：{message}"),
    "dialog.unfinished": (
        "{count} recording(s) were not finished last time (the app stopped while recording). "
        "Recover them?",
        "上次有 {count} 个录音未正常结束（录音时程序中断）。要恢复吗？",
    ),
    "dialog.recovered": ("Recovered: {path}", "已恢复：{path}"),
    "dialog.choose_model": ("Choose a model", "选择模型"),
    "dialog.model_field": ("Model (Hub id or folder)", "模型（Hub id 或文件夹）"),
    "dialog.model_hint": (
        "A Hugging Face Hub id (owner/name) or a local folder: a wav2vec2-family CTC "
        "checkpoint, or a Whisper model in CTranslate2 format (e.g. Systran/faster-whisper-small).",
        "Hugging Face Hub 模型 ID（owner/name）或本地文件夹：wav2vec2 系列 CTC 模型，"
        "或 CTranslate2 格式的 Whisper 模型（如 Systran/faster-whisper-small）。",
    ),
    "dialog.browse": ("Folder…", "文件夹…"),
    "dialog.open_files": ("Open audio or video files", "打开音频或视频文件"),
    "dialog.media_filter": ("Audio and video ({patterns})", "音频和视频 ({patterns})"),
    "dialog.save_transcript": ("Save transcript", "保存转写"),
    "dialog.nothing_to_save": ("There is no transcript to save yet.", "还没有可保存的转写。"),
    "dialog.saved": ("Saved {path}", "已保存 {path}"),
    # A finished transcript the library could not take (a full disk): kept, and added with the
    # next change to the library or at close. {message} is the library's error.
    "library.not_added": (
        "Not in the library yet: {names} ({message}). Tingxie keeps the transcript and adds it "
        "with the next change to the library, or when it closes; Save (Ctrl+S) writes it to a "
        "file now.",
        "尚未加入转写库：{names}（{message}）。听写会保留这份转写，并在下一次修改转写库时或关闭时"
        "加入；“保存”（Ctrl+S）可立即把它写入文件。",
    ),
    # A library an older Tingxie made, brought up to date as the app starts.
    "library.upgrading": (
        "Upgrading the transcript library {path} for this version of Tingxie; a big library "
        "takes a few seconds. Please wait: the window opens once it is done.",
        "正在为此版本的听写升级转写库 {path}；转写很多时需要几秒钟。请稍候：完成后窗口就会打开。",
    ),
    "library.close_unadded": (
        "Still not in the library: {names} ({message}). Close anyway and leave them out of it? "
        "Cancel, then Save (Ctrl+S), keeps a file of each.",
        "仍未加入转写库：{names}（{message}）。仍要关闭、不把它们加入转写库吗？"
        "可先取消，再用“保存”（Ctrl+S）把每份转写写入文件。",
    ),
    # Save on a file not transcribed to its end: {reached} is save.position, or only the time
    # its transcript reaches where the file's length is not known.
    "save.position": ("{done} of {total}", "{done}（全长 {total}）"),
    "save.partial.running": (
        "{file} is still being transcribed: its transcript reaches {reached} so far. Save the "
        "part transcribed so far?",
        "{file} 仍在转写中：目前转写到 {reached}。要保存已转写的部分吗？",
    ),
    "save.partial.cancelled": (
        "{file} was cancelled: its transcript reaches only {reached}. Save that part?",
        "{file} 的转写已取消：只转写到 {reached}。要保存这一部分吗？",
    ),
    "save.partial.failed": (
        "{file} failed partway: its transcript reaches only {reached}. Save that part?",
        "{file} 转写中途失败：只转写到 {reached}。要保存这一部分吗？",
    ),
    "save.partial.recording": (
        "The recording is still going on (or its last words are still being recognized): its "
        "transcript reaches {reached} so far, without the text still being recognized. Save "
        "the part so far?",
        "录音仍在进行（或最后几句仍在识别中）：目前转写到 {reached}，不含仍在识别的文字。"
        "要保存目前的部分吗？",
    ),
    # Save on a transcript whose speakers (the setting) are still being told apart.
    "save.no_speakers": (
        "The speakers in {file} are still being told apart. Save now, without speaker labels? "
        "(No: wait; the labels appear in the transcript once they are in, then save again.)",
        "{file} 的说话人仍在区分中。要现在保存（不含说话人标注）吗？"
        "（选“否”则等待：标注出现在转写中后再保存。）",
    ),
    "dialog.saved_partial": (
        "Saved the part transcribed so far (up to {reached}) to {path}",
        "已将转写到 {reached} 的部分保存到 {path}",
    ),
    "dialog.cannot_write": (
        "{path} could not be written ({detail}); choose another folder or free some space",
        "无法写入 {path}（{detail}）；请换一个文件夹或释放空间",
    ),
    "dialog.replace_file": (
        "{path} exists already. Replace it?",
        "{path} 已存在。要替换它吗？",
    ),
    "dialog.save_over_audio": (
        "{path} is the recording itself: saving there would replace it with the transcript; "
        "choose another name",
        "{path} 就是录音本身：保存到这里会用转写替换录音；请换一个文件名",
    ),
    # Folders and watch folders (app.folders)
    "action.add_folder": ("Add folder…", "添加文件夹…"),
    "action.watch_folders": ("Watch folders…", "监视文件夹…"),
    "dialog.add_folder": ("Add a folder of audio or video", "添加音频或视频文件夹"),
    "dialog.confirm_folder": (
        "Transcribe the files in {folder} ({count} in all)?",
        "转写 {folder} 中的 {count} 个文件？",
    ),
    "dialog.empty_folder": (
        "{folder} and its subfolders hold no audio or video files.",
        "{folder} 及其子文件夹中没有音频或视频文件。",
    ),
    "watch.title": ("Watch folders", "监视文件夹"),
    "watch.explain": (
        "Audio and video files in these folders (subfolders too), those already there and "
        "each new one, are transcribed once they stop growing, and their transcripts written "
        "as set below. Finished files are remembered in the output folder, so a restart does "
        "not redo them.",
        "这些文件夹（含子文件夹）中已有和新出现的音频、视频文件，在停止增长后自动转写，"
        "并按下方设置写出转写文件。已完成的文件记录在输出文件夹中，重启后不会重做。",
    ),
    "watch.add": ("Add folder…", "添加文件夹…"),
    "watch.remove": ("Remove", "移除"),
    "watch.formats": ("Formats:", "格式："),
    "watch.out": ("Output folder:", "输出文件夹："),
    "watch.out_beside": ("beside each file", "与原文件放在一起"),
    "watch.select_first": (
        "Add a folder with “{add}” and select it in the list: the formats, output folder and "
        "file name are set for each folder.",
        "请先用“{add}”添加文件夹，并在列表中选中它：格式、输出文件夹和文件名按文件夹分别设置。",
    ),
    "watch.name": ("File name:", "文件名："),
    "watch.name_help": (
        "{stem}: the file's name; {date}, {time}: when it was transcribed",
        "{stem}：原文件名；{date}、{time}：转写的日期和时间",
    ),
    "watch.no_format": ("Choose at least one format.", "请至少选择一种格式。"),
    "watch.bad_name": (
        "The file name {name} can use only {{stem}}, {{date}} and {{time}}, and no folders.",
        "文件名 {name} 只能使用 {{stem}}、{{date}} 和 {{time}}，且不能包含文件夹。",
    ),
    "watch.hidden_name": (
        "The file name {name} starts with “.”: its transcripts would be hidden files.",
        "文件名 {name} 以“.”开头：转写文件会成为隐藏文件。",
    ),
    "watch.out_relative": (
        "Give the output folder as a full path, not {out} (or choose it with Folder…).",
        "请填写输出文件夹的完整路径，而不是 {out}（或用“文件夹…”选择）。",
    ),
    "watch.out_not_folder": (
        "{out} is a file, not a folder: choose another output folder.",
        "{out} 是文件而不是文件夹：请另选输出文件夹。",
    ),
    "watch.overlap": (
        "{folder} cannot be added: it is, holds or lies inside {other}, already watched, and "
        "their files would be transcribed twice.",
        "无法添加 {folder}：它与已监视的 {other} 相同、包含它或位于其中，文件会被转写两次。",
    ),
    "watch.unreadable": (
        "Not watched: {folder}. This version cannot read its settings ({reason}); they are "
        "kept in the settings file.",
        "未监视：{folder}。此版本无法读取它的设置（{reason}）；设置仍保留在设置文件中。",
    ),
    "watch.forget_unreadable": ("Remove them from the settings", "从设置中删除这些"),
    "watch.out_changed": (
        "The files of {folder} already transcribed are remembered in its old output folder: "
        "with this one, they will all be transcribed again.",
        "{folder} 中已转写的文件记录在原来的输出文件夹中：改用这个输出文件夹后，它们都会重新转写。",
    ),
    "watch.queued": (
        "New files from {folder} queued: {count}",
        "已将 {folder} 中的 {count} 个新文件加入队列",
    ),
    "watch.exported": ("Wrote {files}", "已写入 {files}"),
    "watch.gone": (
        "Watch folder {folder} is not there (renamed, removed or its drive unplugged): its new "
        "files are transcribed once it is back",
        "监视文件夹 {folder} 不在了（已改名、删除或所在的磁盘已拔出）：它回来后再转写其中的新文件",
    ),
    "watch.back": (
        "Watch folder {folder} is back: watching it again",
        "监视文件夹 {folder} 已恢复：继续监视",
    ),
    "watch.held_back": (
        "{folder}: {count} file(s) that failed before, first {name}, wait for a new version; "
        "Watch folders… → Retry failed files tries them again now",
        "{folder}：此前转写失败的 {count} 个文件（第一个是 {name}）将等到有新版本时再转写；"
        "在“监视文件夹…”中点“重试失败的文件”可立即重试",
    ),
    "watch.retry_failed": ("Retry failed files", "重试失败的文件"),
    "watch.retry_failed_help": (
        "Transcribe again now the files of the selected folder that failed before and have "
        "not changed since (they otherwise wait for a new version)",
        "立即重新转写所选文件夹中此前转写失败且之后未改动的文件（否则它们会等到有新版本时再转写）",
    ),
    "label.speakers": ("Speakers:", "说话人："),
    "speakers.choice.off": ("Off", "不区分"),
    "speakers.choice.auto": ("Automatic", "自动"),
    "speakers.choice.count": ("{count} speakers", "{count} 人"),
    "speakers.tooltip": (
        "Tell the speakers apart in opened files and finished recordings "
        "(after transcribing: about a second of work per minute of speech)",
        "区分打开的文件和录完的录音中的说话人（转写完成后进行，每分钟语音约需一秒）",
    ),
    "status.speakers": ("Telling the speakers apart in {path}…", "正在区分 {path} 中的说话人…"),
    "speakers.failed": (
        "The speakers of {path} could not be told apart ({message}); the transcript is kept "
        "without them",
        "无法区分 {path} 中的说话人（{message}）；转写已保留，但不含说话人",
    ),
    "action.rename_speaker": ("Rename {name}…", "重命名 {name}…"),
    "action.undo-rename": ("Undo: {what}", "撤销：{what}"),
    "action.redo-rename": ("Redo: {what}", "重做：{what}"),
    "dialog.rename_speaker": ("Rename speaker", "重命名说话人"),
    "transcript.start_hint": (
        "Click “{record}” to transcribe what the microphone hears, or drop audio or video "
        "files here (or File → {open}).",
        "点击“{record}”转写麦克风中的语音，或把音频、视频文件拖到这里（也可用“文件 → {open}”）。",
    ),
    "dialog.speaker_name": (
        "Name for {name} everywhere in this transcript (empty: the default name):",
        "{name} 在整篇转写中的名称（留空则恢复默认名称）：",
    ),
    "undo.rename_speaker": ("Rename {old} to {name}", "将 {old} 重命名为 {name}"),
    # a tuning child killed after it saved the tuned model (app.tune.page)
    "tune.died.saved": (
        "The tuned model had been saved: it is in My models, and its result on the Result step.",
        "微调后的模型在此之前已保存：它在“我的模型”中，结果见“结果”一步。",
    ),
    "tune.died.uncalibrated": (
        "Its confidence calibration was not refitted, so its confidences are shown raw; "
        "tingxie-cli evaluate --model {path} --data HELDOUT.tsv --calibrate fits one.",
        "它的置信度校准未重新拟合，因此显示原始置信度；可用 "
        "tingxie-cli evaluate --model {path} --data 留出数据.tsv --calibrate 拟合。",
    ),
    "share.rewritten": (
        "(a copy, its local paths reduced to names)",
        "（上传的是副本，其中的本地路径只保留名称）",
    ),
    "embed.done_kept": (
        "Wrote {path} (files named {stem} were there already, and are kept as they were)",
        "已写入 {path}（名为 {stem} 的文件已经存在，保持原样）",
    ),
}

_current: Language = "zh"
# Qt's catalogue per language (the PySide6 wheel ships them); English is Qt's own text.
_QT_CATALOGUES: dict[Language, str] = {"zh": "qtbase_zh_CN"}
_qt_translator: QTranslator | None = None


def set_language(lang: str) -> Language:
    """Switch the table and Qt's own texts; an unknown code falls back to Simplified Chinese."""
    global _current
    _current = lang if lang in LANGUAGES else "zh"  # type: ignore[assignment]
    install_qt_translations(_current)
    return _current


def install_qt_translations(lang: Language) -> bool:
    """Qt's standard texts ("OK", "Yes", "Look in:") in `lang`, replacing the previous
    language's; False when there is no application yet or the catalogue is missing (Qt then
    shows English)."""
    global _qt_translator
    app = QCoreApplication.instance()
    if app is None:
        return False
    if _qt_translator is not None:
        app.removeTranslator(_qt_translator)
        _qt_translator = None
    catalogue = _QT_CATALOGUES.get(lang)
    if catalogue is None:
        return True
    translator = QTranslator(app)
    folder = QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)
    if not translator.load(catalogue, folder):
        return False
    app.installTranslator(translator)
    _qt_translator = translator
    return True


# Buttons Qt makes inside its widgets, by object name: (context, name, description) in
# Qt's catalogue. Qt names them once, as it builds them, and a language switch leaves them.
_QT_BUTTONS: dict[str, tuple[str, str, str]] = {
    "qt_dockwidget_floatbutton": (
        "QDockWidget",
        "Float",
        "Undocks and re-attaches the dock widget",
    ),
    "qt_dockwidget_closebutton": ("QDockWidget", "Close", "Closes the dock widget"),
    "ScrollLeftButton": ("QTabBar", "Scroll Left", ""),
    "ScrollRightButton": ("QTabBar", "Scroll Right", ""),
}


def retranslate_qt_buttons(root: QWidget) -> None:
    """Name Qt's own buttons in `root` (a dock's float and close, a tab bar's scroll arrows)
    in the current language, as a screen reader says them: called after a language switch."""
    for button in root.findChildren(QAbstractButton):
        context, name, description = _QT_BUTTONS.get(button.objectName(), ("", "", ""))
        if name:
            button.setAccessibleName(QCoreApplication.translate(context, name))
        if description:
            button.setAccessibleDescription(QCoreApplication.translate(context, description))


def language() -> Language:
    return _current


def tr(key: str, /, **values: object) -> str:
    """The current language's text for `key`, formatted with `values`.

    An unknown key raises KeyError at once (a typo must fail in tests, not show a blank label).
    `key` is positional-only, so a placeholder may be called {key} (a shortcut) too.
    """
    en, zh = STRINGS[key]
    text = zh if _current == "zh" else en
    return text.format(**values) if values else text


# A message as a function that words it in the current language, e.g.
# `lambda: tr("status.saved", path=path)`: called again after a language switch.
Message = Callable[[], str]


class LiveText:
    """The message one widget shows (a status line), reworded on a language switch unless
    the widget shows something else by then (cleared, or set by other code)."""

    def __init__(self, show: Callable[[str], None], shown: Callable[[], str]) -> None:
        self._show, self._shown = show, shown
        self._message: Message | None = None
        self._text = ""

    def say(self, message: Message) -> None:
        self._message, self._text = message, message()
        self._show(self._text)

    def retranslate(self) -> None:
        if self._message is not None and self._shown() == self._text:
            self.say(self._message)
