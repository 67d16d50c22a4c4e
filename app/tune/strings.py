"""UI strings of the Tune page, added to the app's table (`app.i18n`)."""

from __future__ import annotations

from engine.tune.config import settings_help

from ..i18n import STRINGS

__all__ = ["SETTING_HELP_ZH", "TUNE_STRINGS"]

# key -> (English, Simplified Chinese), as in app.i18n.STRINGS.
TUNE_STRINGS: dict[str, tuple[str, str]] = {
    "page.tune": ("Tune", "微调"),
    "tune.step.sources": ("{n}. What to teach", "{n}. 教什么"),
    "tune.step.check": ("{n}. Check the data", "{n}. 检查数据"),
    "tune.step.how": ("{n}. How", "{n}. 怎么训练"),
    "tune.step.watch": ("{n}. Watch", "{n}. 训练过程"),
    "tune.step.result": ("{n}. Result", "{n}. 结果"),
    "tune.step.models": ("{n}. My models", "{n}. 我的模型"),
    "tune.steps": ("Steps", "步骤"),  # the list of the steps above, to a screen reader
    # what to teach
    "tune.sources.title": (
        "Teach the model your words: choose the model to start from and the data to learn.",
        "让模型学会你的用词：选择作为起点的模型和要学习的数据。",
    ),
    "tune.sources.model": ("Base model:", "基础模型："),
    "tune.sources.name": ("Name of the tuned model:", "微调后模型的名称："),
    "tune.sources.data": (
        "Data (every checked row is used; training sets come from “Make training set…” on the "
        "Review page):",
        "数据（使用所有勾选的行；训练集来自校对页的“生成训练集…”）：",
    ),
    "tune.sources.add_folder": ("Add a folder…", "添加文件夹…"),
    "tune.sources.add_manifest": ("Add a manifest…", "添加清单文件…"),
    "tune.sources.manifest_filter": (
        "Manifests (*.tsv *.csv *.jsonl *.json)",
        "清单文件 (*.tsv *.csv *.jsonl *.json)",
    ),
    "tune.sources.check": ("Check the data", "检查数据"),
    "tune.kind.training_set": ("training set", "训练集"),
    "tune.kind.manifest": ("manifest", "清单文件"),
    "tune.kind.common_voice": ("Common Voice", "Common Voice"),
    "tune.kind.folder": ("audio + .txt folder", "音频 + .txt 文件夹"),
    "tune.kind.missing": ("missing", "不存在"),
    "tune.col.name": ("Name", "名称"),
    "tune.col.kind": ("Kind", "类型"),
    "tune.col.clips": ("Clips", "片段"),
    "tune.col.hours": ("Hours", "小时"),
    "tune.col.date": ("Date", "日期"),
    "tune.no_data": ("Check at least one row of data first.", "请先至少勾选一行数据。"),
    "tune.no_model": ("Choose a base model first.", "请先选择基础模型。"),
    # check
    "tune.check.title": (
        "What the job would find, before any time is spent.",
        "开始训练前，先看看任务会发现什么问题。",
    ),
    "tune.check.running": ("Checking every row…", "正在检查每一行…"),
    "tune.check.summary": (
        "{usable} of {total} rows usable: {minutes:.1f} min of audio; {train} utterances "
        "({train_minutes:.1f} min) to train on and {heldout} ({heldout_seconds:.0f} s) held out "
        "to measure the result.",
        "{total} 行中 {usable} 行可用：共 {minutes:.1f} 分钟音频；{train} 句（{train_minutes:.1f} "
        "分钟）用于训练，{heldout} 句（{heldout_seconds:.0f} 秒）留作检验结果。",
    ),
    "tune.check.summary_split": (
        "{usable} of {total} rows usable: {minutes:.1f} min of audio; {train} utterances "
        "({train_minutes:.1f} min) to train on and {heldout} ({heldout_seconds:.0f} s) held out: "
        "{report} measure the result, {selection} choose the checkpoint.",
        "{total} 行中 {usable} 行可用：共 {minutes:.1f} 分钟音频；{train} 句（{train_minutes:.1f} "
        "分钟）用于训练，{heldout} 句（{heldout_seconds:.0f} 秒）留出：{report} 句检验结果，"
        "{selection} 句用于选择检查点。",
    ),
    "tune.check.clean": ("No problems found.", "没有发现问题。"),
    "tune.check.blocking": ("Must be fixed: ", "必须解决："),
    "tune.check.warning": ("Warning: ", "注意："),
    "tune.check.accept": ("Go on with these warnings", "接受这些提醒，继续"),
    "tune.check.add_vocab": ("Add the characters to the vocabulary", "把这些字加入词表"),
    "tune.check.next": ("Next: how to train", "下一步：怎么训练"),
    "tune.check.seconds": ("seconds", "秒"),
    "tune.check.utterances": ("utterances", "句数"),
    "tune.check.skipped": ("left out", "不使用"),
    "tune.check.kept": ("used", "使用"),
    "tune.check.listed": (
        "The table lists the first {shown} of {total} findings: Save report… writes them all.",
        "表中只列出全部 {total} 条中的前 {shown} 条：“保存报告…”可写出全部。",
    ),
    "tune.check.save_report": ("Save report…", "保存报告…"),
    "tune.check.report_saved": (
        "Wrote all {count} findings to {path}.",
        "已把全部 {count} 条写入 {path}。",
    ),
    "tune.check.report_over_source": (
        "{path} is data this check read: choose another name for the report.",
        "{path} 是本次检查读取的数据：请给报告另起一个名字。",
    ),
    "tune.col.row": ("Row", "行"),
    "tune.col.problem": ("Problem", "问题"),
    "tune.col.detail": ("Detail", "详情"),
    "tune.col.used": ("Trains?", "是否训练"),
    "tune.issue.unusable": ("The data cannot be used: {detail}", "数据无法使用：{detail}"),
    "tune.issue.no_model": (
        "The base model cannot be used: {detail}",
        "基础模型无法使用：{detail}",
    ),
    "tune.issue.skipped_rows": (
        "{count} row(s) will not train (see the table).",
        "有 {count} 行不会参与训练（见下表）。",
    ),
    "tune.issue.unknown_chars": (
        "The model cannot write {count} character(s): {detail}. Rows with them are left out "
        "unless you add them to the vocabulary.",
        "模型不会写其中 {count} 个字：{detail}。除非把它们加入词表，含这些字的行不参与训练。",
    ),
    "tune.issue.no_vocabulary": (
        "The vocabulary of {detail} is not at hand, so unknown characters are not checked yet; "
        "the job reports them when it starts.",
        "{detail} 的词表不在本机，暂时无法检查生僻字；任务开始时会报告。",
    ),
    "tune.issue.conflicting": (
        "{count} rows give a clip a transcript that another row contradicts (see the table): "
        "all of them train; correct or remove the wrong ones.",
        "有 {count} 行给同一段音频标了互相矛盾的文字（见下表）：它们都会参与训练；"
        "请改正或删掉错的行。",
    ),
    "tune.issue.little_data": (
        "Only {count} s of audio to train on: expect a small change.",
        "只有 {count} 秒音频可训练：效果可能不明显。",
    ),
    "tune.issue.small_heldout": (
        "Only {count} held-out utterance(s) measure the result: the before/after CER will be "
        "rough.",
        "只有 {count} 句留出录音用于检验结果：前后字错率只能作粗略参考。",
    ),
    "tune.issue.no_heldout": (
        "Nothing is held out, so the result cannot be measured (raise heldout_fraction).",
        "没有留出检验数据，无法衡量结果（请调高 heldout_fraction）。",
    ),
    "tune.issue.one_row": (
        "Only one row is usable: at least two are needed to hold one out and measure the "
        "result (add rows).",
        "只有一行可用：至少要两行才能留出一行检验结果（请添加数据）。",
    ),
    # how many rows of one kind, in a list of them ("1 audio missing, 2 too short")
    "tune.check.kind_count": ("{count} {kind}", "{kind} {count} 行"),
    "tune.check.separator": (", ", "、"),
    "tune.finding.missing_audio": ("audio missing", "音频不存在"),
    "tune.finding.unreadable_audio": ("audio unreadable", "音频无法读取"),
    "tune.finding.bad_row": ("bad row", "格式错误"),
    "tune.finding.empty_text": ("no text", "没有文字"),
    "tune.finding.too_short": ("too short", "太短"),
    "tune.finding.too_long": ("too long", "太长"),
    "tune.finding.text_too_long": ("text too long for the audio", "文字比音频长"),
    "tune.finding.unknown_chars": ("characters the model lacks", "模型没有的字"),
    # how
    "tune.how.title": (
        "Method and preset first; every setting is shown as the job file has it (hover for "
        "help, an empty field takes the preset's value).",
        "先选方法和预设；所有设置都按任务文件的写法列出（悬停查看说明，留空即采用预设值）。",
    ),
    "tune.how.measure": ("Measure time and memory", "测量时间和内存"),
    "tune.how.not_measured": (
        "Time and memory are measured on this machine with a few warm-up steps.",
        "时间和内存会在本机用几步预热训练实测。",
    ),
    "tune.how.measuring": (
        "Measuring: setting the job up and running a few steps…",
        "正在测量：准备任务并试跑几步…",
    ),
    "tune.how.stale": (
        "Settings changed: measure again for an estimate.",
        "设置已更改：请重新测量。",
    ),
    "tune.how.estimate": (
        "About {total} on {device}: setup {setup}, {per_step:.2f} s per step × {steps}, "
        "{evaluations} evaluations × {eval:.1f} s, {saves} checkpoints × {save:.1f} s, "
        "finishing {finish} (measured over {measured} steps); peak memory {memory:.2f} GB.",
        "在 {device} 上约需 {total}：准备 {setup}，每步 {per_step:.2f} 秒 × {steps} 步，"
        "{evaluations} 次检验 × {eval:.1f} 秒，{saves} 个检查点 × {save:.1f} 秒，收尾 {finish}"
        "（按 {measured} 步实测）；内存峰值 {memory:.2f} GB。",
    ),
    "tune.how.estimate_gpu": (
        "About {total} on {device}: setup {setup}, {per_step:.2f} s per step × {steps}, "
        "{evaluations} evaluations × {eval:.1f} s, {saves} checkpoints × {save:.1f} s, "
        "finishing {finish} (measured over {measured} steps); peak memory {memory:.2f} GB, "
        "GPU memory {device_memory:.2f} GB.",
        "在 {device} 上约需 {total}：准备 {setup}，每步 {per_step:.2f} 秒 × {steps} 步，"
        "{evaluations} 次检验 × {eval:.1f} 秒，{saves} 个检查点 × {save:.1f} 秒，收尾 {finish}"
        "（按 {measured} 步实测）；内存峰值 {memory:.2f} GB，显存 {device_memory:.2f} GB。",
    ),
    # the estimate with the finish's calibration refit named apart (engine.tune.events.Estimate
    # .refit_seconds, a part of finish_seconds)
    "tune.how.estimate_refit": (
        "About {total} on {device}: setup {setup}, {per_step:.2f} s per step × {steps}, "
        "{evaluations} evaluations × {eval:.1f} s, {saves} checkpoints × {save:.1f} s, "
        "finishing {finish}, of which the calibration refit {refit} (measured over {measured} "
        "steps); peak memory {memory:.2f} GB.",
        "在 {device} 上约需 {total}：准备 {setup}，每步 {per_step:.2f} 秒 × {steps} 步，"
        "{evaluations} 次检验 × {eval:.1f} 秒，{saves} 个检查点 × {save:.1f} 秒，收尾 {finish}"
        "（其中重新拟合置信度校准 {refit}；按 {measured} 步实测）；内存峰值 {memory:.2f} GB。",
    ),
    "tune.how.estimate_gpu_refit": (
        "About {total} on {device}: setup {setup}, {per_step:.2f} s per step × {steps}, "
        "{evaluations} evaluations × {eval:.1f} s, {saves} checkpoints × {save:.1f} s, "
        "finishing {finish}, of which the calibration refit {refit} (measured over {measured} "
        "steps); peak memory {memory:.2f} GB, GPU memory {device_memory:.2f} GB.",
        "在 {device} 上约需 {total}：准备 {setup}，每步 {per_step:.2f} 秒 × {steps} 步，"
        "{evaluations} 次检验 × {eval:.1f} 秒，{saves} 个检查点 × {save:.1f} 秒，收尾 {finish}"
        "（其中重新拟合置信度校准 {refit}；按 {measured} 步实测）；内存峰值 {memory:.2f} GB，"
        "显存 {device_memory:.2f} GB。",
    ),
    "tune.how.failed": ("The measurement failed: {message}", "测量失败：{message}"),
    "tune.how.one_job": (
        "The job runs in its own process: the app stays usable, and one job runs at a time.",
        "任务在独立进程中运行：程序照常可用；同一时间只运行一个任务。",
    ),
    "tune.how.start": ("Start tuning", "开始微调"),
    "tune.auto": ("automatic", "自动"),
    "tune.yes": ("yes", "是"),
    "tune.no": ("no", "否"),
    "tune.form.empty": ("{name}: give a value", "{name}：请填写数值"),
    "tune.check_failed": ("The data could not be checked: {detail}", "无法检查数据：{detail}"),
    "tune.start_failed": (
        "{path}: the tuning process could not start ({detail})",
        "{path}：微调进程无法启动（{detail}）",
    ),
    "tune.check_first": (
        "The data or its settings changed since the check: check again first.",
        "数据或相关设置在检查后有改动：请先重新检查。",
    ),
    # watch
    "tune.watch.title": ("The running job", "正在运行的任务"),
    "tune.watch.idle": ("No job is running.", "没有正在运行的任务。"),
    "tune.watch.starting": (
        "Starting the tuning process (pid {pid})…",
        "正在启动微调进程（pid {pid}）…",
    ),
    "tune.watch.running": ("Tuning…", "正在微调…"),
    "tune.watch.resumed": ("Resumed at step {step}.", "已从第 {step} 步继续。"),
    "tune.watch.set_aside": (
        "Checkpoint {checkpoint} could not be read ({problem}), so the job resumed from step "
        "{step}; the damaged checkpoint is kept as {kept}.",
        "无法读取检查点 {checkpoint}（{problem}），因此任务从第 {step} 步继续；"
        "损坏的检查点已保留为 {kept}。",
    ),
    "tune.watch.about": (
        "{method} ({preset}), {steps} steps on {train} utterances ({minutes:.1f} min), "
        "{heldout} held out; {device}, {precision}",
        "{method}（{preset}），{steps} 步，训练 {train} 句（{minutes:.1f} 分钟），"
        "留出 {heldout} 句；{device}，{precision}",
    ),
    "tune.watch.about_split": (
        "{method} ({preset}), {steps} steps on {train} utterances ({minutes:.1f} min), "
        "{heldout} held out: {report} measure the result, {selection} choose the checkpoint; "
        "{device}, {precision}",
        "{method}（{preset}），{steps} 步，训练 {train} 句（{minutes:.1f} 分钟），"
        "留出 {heldout} 句：{report} 句检验结果，{selection} 句用于选择检查点；"
        "{device}，{precision}",
    ),
    "tune.watch.stats": (
        "step {step} of {total} · loss {loss:.3f} · held-out CER {cer} · {rate:.1f} utt/s · "
        "{eta} left",
        "第 {step}/{total} 步 · 损失 {loss:.3f} · 检验字错率 {cer} · {rate:.1f} 句/秒 · 剩余 {eta}",
    ),
    "tune.watch.loss": ("Training loss", "训练损失"),
    "tune.watch.cer": ("Held-out CER (%)", "检验字错率（%）"),
    "tune.watch.step": ("step", "步"),
    "tune.watch.checkpoint": ("checkpoint at step {step}: {path}", "第 {step} 步检查点：{path}"),
    "tune.watch.checkpoint_best": (
        "checkpoint at step {step} (best so far): {path}",
        "第 {step} 步检查点（目前最佳）：{path}",
    ),
    "tune.watch.checkpoints": ("Checkpoints saved", "已保存的检查点"),
    "tune.watch.cancel": ("Cancel (keep a checkpoint)", "取消（保留检查点）"),
    "tune.watch.cancelling": (
        "Stopping after this step and saving a checkpoint…",
        "本步结束后停止并保存检查点…",
    ),
    "tune.watch.resume": ("Resume", "继续训练"),
    "tune.watch.finished": ("Finished after {steps} steps.", "已完成，共 {steps} 步。"),
    "tune.watch.cancelled": (
        "Stopped at step {step}; the checkpoint is kept: Resume continues from it.",
        "已在第 {step} 步停止并保留检查点：点“继续训练”即可接着训练。",
    ),
    "tune.watch.cancelled_none": (
        "Stopped at step {step} before any checkpoint.",
        "在第 {step} 步停止，尚无检查点。",
    ),
    "tune.watch.failed": ("The job failed: {message}", "任务失败：{message}"),
    "tune.died.killed": (
        "The tuning process was killed (signal 9: out of memory, or stopped by another "
        "program); the app is fine.",
        "微调进程被强行终止（信号 9：内存不足，或被其他程序结束）；程序本身不受影响。",
    ),
    "tune.died.signal": (
        "The tuning process was stopped by signal {signal}; the app is fine.",
        "微调进程被信号 {signal} 终止；程序本身不受影响。",
    ),
    "tune.died.crashed": (
        "The tuning process crashed (exit status {status}; its log is child.log in the job "
        "folder); the app is fine.",
        "微调进程崩溃（退出码 {status}，日志见任务文件夹中的 child.log）；程序本身不受影响。",
    ),
    "tune.died.vanished": (
        "The tuning process ended without its last report (stopped from outside?); the app is "
        "fine.",
        "微调进程结束时没有留下最后的报告（可能被外部结束）；程序本身不受影响。",
    ),
    "tune.died.kept": (
        "The checkpoint of step {step} is kept: Resume continues from it.",
        "第 {step} 步的检查点已保留：点“继续训练”即可接着训练。",
    ),
    "tune.died.nothing": (
        "No checkpoint had been saved yet: start again.",
        "尚未保存任何检查点：请重新开始。",
    ),
    # result
    "tune.result.title": ("What the tuning changed", "微调带来的变化"),
    "tune.result.none": ("No finished job yet.", "还没有完成的任务。"),
    "tune.result.unmeasured": (
        "Finished; nothing was held out, so the change was not measured.",
        "已完成；没有留出检验数据，未衡量效果。",
    ),
    "tune.result.cer": (
        "Held-out CER {before:.1f} % → {after:.1f} %{relative}, the base model and the tuned one "
        "(step {step}) on the same held-out recordings, none of which was used to choose that "
        "step.",
        "检验字错率 {before:.1f}% → {after:.1f}%{relative}，"
        "基础模型与微调模型（第 {step} 步）在同一批留出录音上测得，这些录音均未用于选择该步。",
    ),
    # a card written before the held-out rows were split: they may have chosen the step too
    "tune.result.cer_unknown_rows": (
        "Held-out CER {before:.1f} % → {after:.1f} %{relative}, the base model and the tuned one "
        "(step {step}) on the same held-out recordings, which, in a model tuned before this "
        "version, may also have chosen that step: the figure may flatter it.",
        "检验字错率 {before:.1f}% → {after:.1f}%{relative}，"
        "基础模型与微调模型（第 {step} 步）在同一批留出录音上测得；此模型由旧版本微调，"
        "这些录音可能也用于选择了该步，结果可能偏好。",
    ),
    "tune.result.relative": (" ({change:+.0f} % relative)", "（相对变化 {change:+.0f}%）"),
    "tune.result.not_better": (
        "It is not better than the base model on them: more corrected audio, more steps or "
        "another preset may help; the model in use stays until you switch.",
        "在这些录音上它并不比基础模型好：可以增加校对过的音频、步数或换一个预设；"
        "在你切换之前，当前模型保持不变。",
    ),
    "tune.result.sample": (
        "One held-out recording, as each model wrote it (wrong characters in red):",
        "一段留出录音，两个模型各自的转写（错字标红）：",
    ),
    "tune.result.reference": ("reference", "参考文本"),
    "tune.result.before": ("before", "微调前"),
    "tune.result.after": ("after", "微调后"),
    "tune.result.use": ("Use this model", "使用此模型"),
    "tune.result.export": ("Export…", "导出…"),
    "tune.using": (
        "Switching transcription to “{name}”…",
        "正在将转写切换到“{name}”…",
    ),
    "tune.now_using": ("Transcribing with “{name}” now.", "现在用“{name}”转写。"),
    "tune.use_failed": (
        "Transcription could not switch to “{name}”; the window's message says why, and the "
        "model in use stays.",
        "转写未能切换到“{name}”，原因见窗口的提示；仍使用当前模型。",
    ),
    # my models
    "tune.models.title": ("Tuned models on this computer", "本机的微调模型"),
    "tune.models.use": ("Use", "使用"),
    "tune.models.rename": ("Rename…", "重命名…"),
    "tune.models.export": ("Export…", "导出…"),
    "tune.models.delete": ("Delete…", "删除…"),
    "tune.models.no_card": ("card unreadable", "模型卡无法读取"),
    "tune.models.no_card_tip": (
        "Its model card ({path}) is missing or cannot be read, so its method, steps and CER "
        "are unknown. The model can still be used, exported or deleted.",
        "其模型卡（{path}）缺失或无法读取，因此方法、步数和字错率未知。该模型仍可使用、导出或删除。",
    ),
    "tune.col.base": ("Base model", "基础模型"),
    "tune.col.data": ("Data", "数据"),
    "tune.col.method": ("Method, steps", "方法，步数"),
    "tune.col.before": ("CER before", "微调前字错率"),
    "tune.col.after": ("CER after", "微调后字错率"),
    "tune.rename_to": ("New name:", "新名称："),
    "tune.confirm_delete": (
        "Delete “{name}” with its checkpoints ({path})? This cannot be undone.",
        "删除“{name}”及其检查点（{path}）？此操作无法撤销。",
    ),
    "tune.delete_in_use": (
        "“{name}” is the model in use: once it is deleted, transcription goes back to {base}, "
        "the model it was tuned from.",
        "“{name}”是正在使用的模型：删除后，转写将改回它的基础模型 {base}。",
    ),
    "tune.switched_back": (
        "“{name}” is deleted; transcription goes back to {base}, the model it was tuned from.",
        "已删除“{name}”；转写改回它的基础模型 {base}。",
    ),
    "tune.gone": (
        "The folder {path} is no longer there (deleted or moved outside Tingxie); the list "
        "shows what is left.",
        "文件夹 {path} 已不存在（可能在听写之外被删除或移动）；列表已更新为现有的模型。",
    ),
    # jobs found on disk, one at a time, closing
    "tune.offer_resume": (
        "Tuning “{name}” stopped at step {step} of {total}. Resume it from its checkpoint?",
        "微调“{name}”停在第 {step}/{total} 步。要从检查点继续吗？",
    ),
    "tune.discard": ("Discard", "丢弃"),
    "tune.unreadable_jobs": (
        "A tuning job folder cannot be read and is left out: {folders}. It is damaged or comes "
        "from a newer Tingxie (the log says which); update Tingxie, or delete the folder.",
        "无法读取以下微调任务文件夹，已跳过：{folders}。它已损坏或来自更新版本的听写"
        "（详见日志）；请更新听写，或删除该文件夹。",
    ),
    "tune.confirm_discard": (
        "Discard the stopped job “{name}” and its checkpoints?",
        "丢弃已停止的任务“{name}”及其检查点？",
    ),
    "tune.attached": (
        "“{name}” kept tuning while Tingxie was closed; showing it.",
        "听写关闭期间“{name}”仍在微调；下面显示其进度。",
    ),
    "tune.one_job": (
        "“{name}” is already running: one tuning job runs at a time. Wait for it or cancel it.",
        "“{name}”正在运行：同一时间只运行一个微调任务。请等待它完成或取消它。",
    ),
    "tune.close.question": (
        "“{name}” is still tuning. Stop it now (a checkpoint is kept, so it can be resumed), "
        "or let it finish in the background (its result is here next time)?",
        "“{name}”仍在微调。现在停止（保留检查点，之后可继续），还是让它在后台完成（下次打开即可看到结果）？",
    ),
    "tune.close.stop": ("Stop and keep a checkpoint", "停止并保留检查点"),
    "tune.close.starting": (
        "“{name}” is about to start tuning. Closing now does not start it; start it again on "
        "the Tune page next time.",
        "“{name}”即将开始微调。现在关闭则不会开始；下次可在“微调”页重新开始。",
    ),
    "tune.close.dont_start": ("Close without starting it", "关闭，不开始"),
    "tune.finished_while_closed": (
        "“{name}” finished tuning while Tingxie was closed; its result is on the Result step.",
        "听写关闭期间“{name}”已完成微调；结果见“结果”步骤。",
    ),
    "tune.close.background": ("Let it finish in the background", "在后台完成"),
    "tune.offer_discard": (
        "Tuning “{name}” stopped before its first checkpoint: there is nothing to resume. "
        "Discard it to free its space.",
        "微调“{name}”在保存第一个检查点之前就停止了，没有可以继续的进度。请丢弃它以释放空间。",
    ),
    "tune.confirm_discard_new": (
        "Discard the job “{name}”? It stopped before its first checkpoint; its folder is removed.",
        "丢弃任务“{name}”？它在第一个检查点之前就停止了；其文件夹将被删除。",
    ),
}

# What each TuneConfig setting means, in Chinese: the note beside it in the form (and its
# tooltip). The English is the setting's own help (`settings_help`, what `tune --help` shows);
# both are registered as `tune.help.<setting>`.
SETTING_HELP_ZH: dict[str, str] = {
    "model": "基础模型：Hugging Face 格式的模型文件夹，或 Hub 模型 ID",
    "data": (
        "清单（.tsv/.csv：path,text[,start,end]；或 JSON lines：每行一个含 audio、text 的对象）、"
        "音频 + 同名 .txt 的文件夹，或 Common Voice 文件夹"
    ),
    "output_dir": (
        "新的或空的文件夹（继续某个任务时用它自己的文件夹）：存放 checkpoints/、"
        "model/（合并后的模型）和 adapter/（LoRA）"
    ),
    "method": "lora（适配器，小而稳妥）、partial（部分微调）或 full（全部微调）",
    "preset": "quick（快速）/ balanced（均衡）/ thorough（充分）：为留空的设置填入数值",
    "steps": "训练步数（优化器更新的次数）",
    "max_minutes": (
        "时间上限：任务实际用时的分钟数（含准备和收尾；继续的任务接着已用的时间计算）；"
        "训练会提前停止，使最后的检验、检查点、保存模型和置信度校准（按已测时间）在此之前完成，"
        "学习率在最后一步降到 0。留空 = 不限时"
    ),
    "learning_rate": "峰值学习率：预热结束时达到，之后线性降到 0",
    "lora_rank": "LoRA 适配器的秩（容量）",
    "mask_time_prob": "SpecAugment：在时间上被遮盖的帧所占的比例",
    "lora_alpha": "LoRA 的缩放系数；留空 = 2 × 秩",
    "lora_dropout": "LoRA 支路上的 dropout 比例",
    "freeze_layers": "partial：冻结最底下的 N 层 Transformer（留空 = 一半）",
    "freeze_feature_encoder": "是否冻结特征编码器；自动 = lora/partial 时冻结，full 时训练",
    "allow_pickle": (
        "允许加载只有 pytorch_model.bin 权重的基础模型（pickle 格式，加载时可能执行代码）："
        "仅用于可信的来源"
    ),
    "extend_vocab": "把词表中没有的字加入词表（否则跳过含这些字的行）",
    "domain_text": (
        "文本文件（每行一句），在基础模型带语言模型时，用于构建微调后模型的领域 n 元语言模型；"
        "留空 = 用训练数据的转写文字。若为防止遗忘混入了通用语音，请给出该领域自己的文本，"
        "以免通用句子冲淡它"
    ),
    "warmup_steps": "预热步数；留空 = 总步数的 10%",
    "weight_decay": "AdamW 的解耦权重衰减",
    "max_grad_norm": "梯度裁剪的范数上限（0 = 不裁剪）",
    "batch_seconds": "每个优化步的音频秒数（靠梯度累积达到）",
    "micro_batch_seconds": "每次前向计算的音频秒数（含填充；限制内存占用）",
    "mask_time_length": "每个时间遮盖的帧数（10 帧 × 20 毫秒）",
    "mask_feature_prob": "SpecAugment：在隐藏通道上遮盖的比例",
    "layerdrop": "训练时随机跳过整层 Transformer 的比例",
    "seed": "随机种子：固定初始化、数据顺序和遮盖",
    "device": "auto：有 CUDA GPU 时使用 GPU",
    "precision": "auto：CUDA 上用 bf16（较旧的 GPU 用 fp16），CPU 上用 fp32",
    "gradient_checkpointing": "训练时重新计算激活值：内存更少，约慢 30%",
    "cache_features": (
        "特征编码器冻结时：每句只计算一次它的输出并保存在磁盘上的 output_dir/cache 中"
        "（约为解码后音频的 3 倍大小），而不是每一步都运行卷积层"
    ),
    "heldout_fraction": "留作检验的语句比例（按语句 ID 的哈希划分）",
    "eval_every": "每隔多少步在检验语句上测一次字错率（0 = 只在训练前后各测一次）",
    "save_every": "每隔多少步保存一次检查点（取消时总会保存一个）",
    "keep_checkpoints": "保留最近几个检查点（最佳的检查点另外保留）",
    "min_seconds": "最短时长（秒）：更短的语句被跳过",
    "max_seconds": "最长时长（秒）：更长的语句被跳过",
    "normalize": (
        "转写文字的规范化（engine.normalize）：half_width（全角转半角）、"
        "remove_punctuation（去掉标点）、remove_spaces（去掉空格）、lowercase（转小写）、"
        "to_simplified（繁体转简体）——默认全部开启"
    ),
}
# a setting the table lacks reads in English (tests/test_app_i18n.py checks that none does)
TUNE_STRINGS.update(
    {
        f"tune.help.{name}": (meaning, SETTING_HELP_ZH.get(name, meaning))
        for name, _, meaning in settings_help()
    }
)

STRINGS.update(TUNE_STRINGS)
