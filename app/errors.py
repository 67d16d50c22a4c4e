"""Engine errors in the UI language.

The engine raises `TingxieError`s: a code, parameters, and an English message (its wording is
in `engine.errors.MESSAGES`, the one English source). This module words each code in Chinese,
registers both as `error.<code>` in the app's table (`app.i18n.STRINGS`), and `error_text`
picks the current language's wording. An error without a known code reads as its own English
text, so nothing is ever hidden. A few engine messages tell the CLI's way out (a flag, a
command): the app words those codes its own way (`APP`, registered as `app.error.<code>`,
with the same parameters), naming its menus instead.
"""

from __future__ import annotations

from engine.errors import MESSAGES, TingxieError

from .i18n import STRINGS, tr

__all__ = ["APP", "ZH", "error_text", "failure_text"]

_REDO = "请确认它能在播放器中播放，或将其转换为 WAV 或 FLAC"
_GET_MODEL = (
    "请选择本地模型文件夹；或在联网的电脑上运行 `hf download {source}`，"
    "再把它在 Hugging Face 缓存中新增的 models--… 文件夹复制到本机正在使用的缓存 {cache} 中"
)
_GET_WHISPER = (
    "请选择 CTranslate2 格式的 Whisper 文件夹（packaging/fetch-whisper-base.py 会把 Whisper-base "
    "组装到 .cache/models/whisper-base）；或在联网的电脑上运行 `hf download {source}`，"
    "再把它在 Hugging Face 缓存中新增的 models--… 文件夹复制到本机正在使用的缓存 {cache} 中"
)
_MICROPHONE_LOST = "已录下的内容保存在 {path} —— 请重新连接它或选择其他设备"

# code -> Simplified Chinese, with the same parameters as the English in engine.errors.
ZH: dict[str, str] = {
    "model.no_cuda": "要求使用 CUDA（device=cuda），但没有可用的 CUDA GPU；请改用 cpu",
    "model.sdpa_unsupported": "{model_type} 不支持 attention=sdpa；请改用 eager",
    "model.folder_missing": "模型文件夹 {path} 不存在；请选择 Hugging Face 格式的模型文件夹",
    "model.folder_incomplete": (
        "模型文件夹 {path} 缺少 {missing}；请复制完整的模型文件夹（save_pretrained 保存的内容）"
    ),
    "model.pickle_only": (
        "模型文件夹 {path} 只有 pickle 格式的权重（pytorch_model.bin），加载时可能执行其中的代码；"
        "请先转换为 model.safetensors，或在确认来源可信时允许 pickle 权重"
    ),
    "model.hub_pickle_only": (
        "模型“{source}”在 Hugging Face Hub 上只有 pickle 格式的权重（pytorch_model.bin），"
        "加载时可能执行其中的代码，因此听写既不下载也不加载它们；若信任其作者，请允许 pickle 权重"
        "（--allow-pickle）以下载并加载它们，或选择带 model.safetensors 权重的模型副本"
    ),
    "model.onnx_only": (
        "模型文件夹 {path} 是 ONNX 导出（有 model.onnx，没有 PyTorch 权重）："
        "请在 ONNX Runtime 上运行（自动或 onnx 后端），或选择导出它的 PyTorch 模型"
    ),
    "model.no_onnx": (
        "模型文件夹 {path} 中没有 model.onnx；请先用 `tingxie-cli export MODEL OUT --format onnx` "
        "导出（加 `--quantize int8` 内存约减半），再选择 OUT 作为模型，或改用 torch 后端"
    ),
    "model.is_file": "模型 {source} 是一个文件；请选择模型文件夹或 Hub 模型 ID",
    "model.file_in_folder": (
        "模型 {source} 是模型文件夹 {folder} 中的一个文件；请选择文件夹 {folder} 本身"
    ),
    "model.invalid_id": "模型“{source}”既不是已有的文件夹，也不是有效的 Hub 模型 ID（owner/name）",
    "model.web_address": (
        "模型 {source} 是网址，但不是 Hugging Face 模型页面；请填写模型的 Hub ID"
        "（owner/name，即 https://huggingface.co/owner/name 中的部分）或本地文件夹"
    ),
    "model.not_cached": "模型“{source}”不在 Hugging Face 缓存中（{detail}）。" + _GET_MODEL,
    "model.download_failed": "模型“{source}”无法下载（{detail}）。" + _GET_MODEL,
    "model.bad_json": "{path} 不是可读取的 JSON（{detail}）；请重新复制模型",
    "model.bad_vocab": (
        "{path} 把 {token!r} 对应到 {found!r}，而这里应是整数编号；"
        "请重新复制模型（save_pretrained 保存的内容）"
    ),
    "model.json_not_object": (
        "{path} 中是 {found}，而这里应是 JSON 对象（{{…}}）；"
        "请重新复制模型（save_pretrained 保存的内容）"
    ),
    "model.bad_weights": "{path} 已损坏或不完整（{detail}）；请重新下载或复制模型",
    "model.bad_onnx": (
        "{path} 不是 ONNX Runtime 能读取的模型（{detail}）；请重新复制，或用 "
        "`tingxie-cli export MODEL OUT --format onnx` 重新导出"
    ),
    "model.parity_failed": (
        "{path} 是未通过一致性检查的 ONNX 导出（{detail}）：它的转写与导出它的模型不同，"
        "文字和置信度都不是那个模型的；请重新导出，或使用导出它的模型"
    ),
    "model.no_ctc_head": (
        "模型文件夹 {path} 没有 CTC 头（权重中缺少 {head}）：这是未经微调的预训练基础模型；"
        "请先针对语音识别微调它（微调），或选择 CTC 模型"
    ),
    "model.unsupported_type": (
        "模型类型“{model_type}”不是受支持的 CTC 模型；听写支持带 CTC 头的 {supported} 模型"
    ),
    "model.unsupported_in_folder": "{path}：{error}",
    "model.load_failed": "无法加载模型文件夹 {path}：{detail}",
    "model.failed": "无法加载模型“{source}”：{detail}",
    "model.vocab_mismatch": (
        "{path} 与模型的 CTC 输出层不符（{outputs} 个输出，即 config.json 中的 vocab_size）："
        "它给出 {tokens} 个词元，编号 {ids} 没有在 0 到 {last} 之间各用一次；"
        "请从权重所属的模型重新复制 vocab.json"
    ),
    "model.tokenizer_mismatch": (
        "{path}（分词器 {name}）没有按原样读取旁边的 vocab.json：其中 {tokens} 个词元有 "
        "{count} 个得到了别的编号或没有编号；请从权重所属的模型重新复制 tokenizer_config.json"
    ),
    "model.head_mismatch": (
        "{config} 中的 vocab_size 为 {vocab_size}，而 {weights} 中的 CTC 头（{head}）有 "
        "{rows} 个输出：两者来自不同的模型；请从同一个模型复制这两个文件"
    ),
    "model.bad_config": (
        "{path} 中有一个值的类型或长度不对（{detail}）；请改正它，或从模型重新复制 config.json"
        "（save_pretrained 保存的内容）"
    ),
    "model.bad_sampling_rate": (
        "{path}：sampling_rate 为 {value!r}，不是语音模型可用的采样率；请填写 {low} 到 {high} "
        "之间的整数赫兹（多数模型为 16000），或从模型重新复制该文件（save_pretrained 保存的内容）"
    ),
    "model.adapter_only": (
        "{path} 是 LoRA 适配器（adapter_config.json），不含它所适配的模型；请选择微调任务的 "
        "model/ 文件夹，或把该任务导出为 Hugging Face 文件夹"
        "（`tingxie-cli export JOB OUT --format hf`），再选择 OUT"
    ),
    "model.download_incomplete": (
        "“{source}”的下载在完成前中断了（{missing} 尚未进入 Hugging Face 缓存）；"
        "请联网后再次选择它（下载会从中断处继续），或运行 `hf download {source}`"
    ),
    "model.flash_unsupported": (
        "transformers 尚未为 {model_type} 实现 attention=flash_attention_2；"
        "请改用 {instead}（或 auto）"
    ),
    "model.vocab_no_mandarin": (
        "{path} 为每种语言各存一份词表（共 {count} 种：{languages}），其中没有普通话（cmn…）；"
        "请在同一文件夹的 tokenizer_config.json 中把 target_lang 设为要转写的语言，"
        "或选择普通话模型"
    ),
    "model.vocab_language_missing": (
        "{path} 把 target_lang 设为 {language!r}，但同一文件夹的 vocab.json 中没有这种语言的词表"
        "（共 {count} 种：{languages}）；请把 target_lang 设为其中之一，"
        "或重新复制模型（save_pretrained 保存的内容）"
    ),
    "model.adapter_missing": (
        "{path} 中每种语言各有一份词表，读取的是 {language!r}，但缺少该语言的 MMS 适配器"
        "（{missing}：其适配层和 CTC 输出层），因此权重自带的输出层与词表不符；"
        "请从模型的 Hub 仓库把 {missing} 复制到 {path}（在联网的电脑上运行 "
        "`hf download OWNER/NAME {missing}`），或把 tokenizer_config.json 中的 target_lang "
        "设为权重微调时所用的语言"
    ),
    "model.no_blank": (
        "{path} 没有给 CTC 输出层留出空白符：空白符是填充词元 {token}（编号 {blank}；"
        "config.json 中 pad_token_id 为 {pad_token_id}），不在输出层的 {outputs} 个输出之中，"
        "静音会被写成文字；请把 config.json 中的 pad_token_id（或 tokenizer_config.json 中的 "
        "pad_token）设为空白符的编号，或从权重所属的模型重新复制 vocab.json"
    ),
    "model.pretrained_encoder": (
        "模型文件夹 {path} 是预训练编码器，没有词表（vocab.json），也没有 CTC 头（{head}）："
        "它无法转写，听写也只能调优带词表的模型；请选择为普通话微调过的 CTC 模型"
        "（例如默认模型），再用你的录音调优它（微调，或 `tingxie-cli tune`）"
    ),
    "tune.output_in_use": (
        "输出文件夹（output_dir）{path} 正被另一个调优任务（pid {pid}）使用；"
        "请等它结束或停止它，或另选 output_dir"
    ),
    "tune.output_unwritable": (
        "输出文件夹（output_dir）{path} 不可写（{detail}）；请另选 output_dir，或让该文件夹可写"
        "（已停止的任务复制到别处后也能继续）"
    ),
    "tune.output_full": (
        "输出文件夹（output_dir）{path}：所在磁盘已无空间（{detail}）；调优任务需要在那里保存"
        "检查点和调优后的模型（至少是基础模型大小的两倍）：请释放空间，或另选 output_dir"
    ),
    "tune.resume_changed": (
        "{path}：其中的检查点是用另一组设置写下的（{changes}）；要继续，请把这些设置改回去；"
        "或使用新的 output_dir，以这些设置从头开始"
    ),
    "tune.checkpoint_mismatch": (
        "{path} 与本任务的模型不符（{detail}）：写下它之后，决定模型形状的设置（model、method、"
        "lora_rank、freeze_layers、freeze_feature_encoder、extend_vocab）被改过；"
        "请改回去，或使用新的 output_dir"
    ),
    "tune.checkpoint_damaged": (
        "{path} 无法读取（{detail}）：它被截断了（断电、磁盘已满或复制中途停止），"
        "或不是听写写入的文件；请从副本恢复该任务文件夹，或使用新的 output_dir 从头开始"
    ),
    "tune.pickle_only": (
        "基础模型 {path} 只有 pickle 格式的权重（pytorch_model.bin），加载时可能执行其中的代码；"
        "请用 tingxie-cli export MODEL OUT --allow-pickle 生成 safetensors 格式的副本，"
        "再以 OUT 微调；或在确认来源可信时在任务配置中设 allow_pickle: true"
        "（或 --set allow_pickle=true）"
    ),
    "tune.nothing_to_resume": (
        "output_dir {path}：没有可继续的训练：{checkpoints} 中没有检查点；请检查 output_dir，"
        "或不加 --resume 运行，从头开始这个任务"
    ),
    "tune.checkpoints_unreadable": (
        "{path}：其中没有可读取的检查点，无法继续训练：{damaged}；这些文件被截断了"
        "（断电、磁盘已满或复制中途停止），或不是听写写入的；"
        "请从副本恢复该任务文件夹，或使用新的 output_dir 从头开始"
    ),
    "tune.checkpoint_full": (
        "{path}：无法写入 {what}（{detail}）；已保留最后一个完整的检查点（{kept}）；"
        "请释放空间，然后继续该任务"
    ),
    "tune.checkpoint_full_none": (
        "{path}：无法写入 {what}（{detail}）；还没有完整的检查点；请释放空间后重新开始"
    ),
    "tune.checkpoint_unwritable": (
        "{path}：无法写入 {what}（{detail}）：该文件夹只读，或你没有写入权限；"
        "已保留最后一个完整的检查点（{kept}）；请让 {path} 可写后继续该任务，"
        "或把该文件夹复制到可写的位置，从副本继续"
    ),
    "tune.checkpoint_unwritable_none": (
        "{path}：无法写入 {what}（{detail}）：该文件夹只读，或你没有写入权限；"
        "还没有完整的检查点；请让 {path} 可写，或另选 output_dir，然后重新开始"
    ),
    "tune.resume_not_shared": (
        "{path}：进程 {rank} 在那里找到的续训检查点是 {found}，进程 0 找到的是 {main}："
        "一个任务的各台机器必须看到同一个 output_dir；请把它放在共享文件系统上（或把其中的 "
        "checkpoints/ 复制到每台机器的同一路径），然后继续训练"
    ),
    "tune.whisper_one_process": (
        "Whisper 模型只在一个进程中调优，而不是 {processes} 个：请不用 accelerate launch，"
        "直接运行 `tingxie-cli tune`（多进程只用于 CTC 模型）"
    ),
    "tune.setting_whole_number": "{name}：{value!r} 不是整数；请填写整数，例如 200",
    "tune.setting_number": "{name}：{value!r} 不是数字；请填写数字，例如 0.5",
    "tune.setting_true_or_false": "{name}={value!r}：应为 true 或 false",
    "tune.setting_text": "{name}={value!r}：应为文本",
    "tune.setting_finite": "{name}：{value!r} 不是有限数值；请填写普通数字",
    "tune.setting_at_least_one": "{name}={value}：至少应为 1",
    "tune.setting_not_negative": "{name}={value}：不能小于 0",
    "tune.setting_positive": "{name}={value}：必须大于 0",
    "tune.setting_fraction": "{name}={value}：请填写 0 到 1 之间的值（不含 1）",
    "tune.setting_choice": "{name}={value!r}：请从 {choices} 中选择一个",
    "tune.setting_min_above_max": (
        "min_seconds={min_seconds} 大于 max_seconds={max_seconds}：所有语句都会被跳过；"
        "请调低 min_seconds 或调高 max_seconds"
    ),
    "tune.setting_micro_batch": "{name}：至少要能容纳 1 秒音频；请调大",
    "model.whisper_not_cached": "Whisper 模型“{source}”不在 Hugging Face 缓存中（{detail}）。"
    + _GET_WHISPER,
    "model.whisper_download_failed": "无法下载 Whisper 模型“{source}”（{detail}）。" + _GET_WHISPER,
    "model.whisper_transformers": (
        "{path} 是 transformers 格式的 Whisper 模型；请先转换为 CTranslate2 格式"
        "（ct2-transformers-converter --model {path} --output_dir OUT --copy_files "
        "tokenizer.json preprocessor_config.json），再选择 OUT"
    ),
    "model.whisper_incomplete": (
        "Whisper 文件夹 {path} 缺少 {missing}；请复制完整的 CTranslate2 文件夹"
        "（model.bin、config.json、tokenizer.json、vocabulary.*）"
    ),
    "model.whisper_load_failed": "无法加载 Whisper 文件夹 {path}：{detail}",
    "model.precision_unsupported": (
        "精度 {precision}：CTranslate2 无法在此 {device} 上以 {compute_type} 运行 Whisper；"
        "请选择 {choices}（命令行中的 --precision）"
    ),
    "hub.lm_config_unreadable": (
        "无法读取 {path}（{detail}）：它说明 lm/ 中是否有由训练转写生成的领域 n-gram"
        "（默认不上传）；请修复它，或从模型文件夹中删除 lm/ 文件夹，然后重新分享"
    ),
    "hub.bad_repo": "仓库名“{repo_id}”不对：请写成 owner/name（用户或组织名，再加模型名）",
    "hub.no_folder": "{path} 不存在；请选择模型文件夹或训练任务的输出文件夹",
    "hub.no_adapter": (
        "{path} 中没有 LoRA 适配器（adapter/ 或 adapter_config.json）；请分享合并后的模型"
    ),
    "hub.no_weights": "{path} 中没有可分享的 safetensors 或 ONNX 权重；请先导出模型",
    "hub.parity_failed": (
        "{path} 是一次一致性检查未通过的 ONNX 导出（见其中的 README.md）："
        "它的转写结果与源模型不同；请重新导出，或改为分享源模型"
    ),
    "hub.no_token": (
        "没有 Hugging Face 令牌：请设置 HF_TOKEN，或在应用中登录（令牌保存在系统钥匙串中）；"
        "{folder} 已可随时上传"
    ),
    "hub.offline": "无法连接 Hugging Face Hub；{folder} 已准备好，稍后可上传（{command}）",
    "export.no_adapter": (
        "{path} 中没有 LoRA 适配器（adapter/adapter_config.json）；"
        "只有 LoRA 微调任务的输出文件夹才有，请改为导出 Hugging Face 文件夹"
    ),
    "export.no_adapter_whisper": (
        "{path} 中没有 LoRA 适配器（adapter/adapter_config.json）；"
        "只有 LoRA 微调任务的输出文件夹才有。"
        "Whisper（CTranslate2）文件夹本身已经完整：请直接复制或分享它"
    ),
    "export.whisper": (
        "{path} 是 Whisper（CTranslate2）文件夹：它已是其运行时的完整格式，"
        "不能导出为 Hugging Face 文件夹或 ONNX；请直接复制或分享它"
    ),
    "export.onnx_source": "{path} 是 ONNX 导出模型，不能再次导出；请从导出它的 PyTorch 模型导出",
    "export.target_is_file": (
        "{path} 是文件，不是文件夹；请为导出选择一个文件夹（新的或空的），该文件保持不变"
    ),
    "export.not_writable": "{path}：无法在 {folder} 中写入；请选择其他输出文件夹，或让该文件夹可写",
    "export.failed": "导出到 {path} 失败：{detail}",
    "export.target_exists": "{path} 已存在且含有文件；请选择其他输出文件夹，或先删除该文件夹",
    "export.cancelled": "已取消导出到 {path}；那里没有写入任何内容（该文件夹中原有的导出保持不变）",
    "export.name_taken": (
        "导出期间有人在那里保存了 {path}，所以导出没有放进去（也没有留下任何内容）；"
        "请移走该文件后重新导出，或选择其他输出文件夹"
    ),
    "export.bad_path": "{path} 不能用作输出文件夹（{detail}）；请另选一个（名称太长时请改短）",
    "export.no_model": "没有要导出的模型；请选择模型文件夹、Hub ID 或微调任务",
    "export.onnx_missing": (
        "ONNX 导出需要可选软件包 {packages}，但它们没有安装；"
        "请在听写的源代码文件夹中运行 `pip install -e '.[onnx]'` 安装，或导出为 Hugging Face 文件夹"
    ),
    "export.check_no_rows": (
        "检查清单 {path} 中没有任何行；请在标题行下写入路径和文字，或不使用检查清单"
    ),
    "export.check_none_usable": (
        "检查清单 {path}：检查的 {total} 行中没有一行可用（{rows}）；请修正这些行，或不使用检查清单"
    ),
    "embed.no_model": "尚未加载模型；请先加载 CTC 模型，再导出向量",
    "embed.failed": "无法计算 {path} 的向量：{detail}",
    "embed.too_short": "{path}：太短，无法得到向量：模型至少需要 {ms} 毫秒的音频；请提供更长的录音",
    "embed.parquet_missing": (
        "parquet 格式需要可选软件包 pyarrow，但它没有安装；"
        "请在听写的源代码文件夹中运行 {hint} 安装，或改用 npy 格式"
    ),
    "speakers.missing": (
        "区分说话人需要可选软件包 {package}；请在听写的源代码文件夹中运行 {hint} 安装"
    ),
    "hub.refused": "Hub 拒绝了上传到 {repo_id}（{detail}）；请检查令牌是否有写权限以及仓库名",
    "hub.files_changed": (
        "{path} 在计划上传后有了变化：{missing} 已不存在；请重新查看要上传的文件，再上传"
    ),
    "hub.failed": "上传到 {repo_id} 失败：{detail}",
    "audio.missing": "{path}：文件不存在；请检查路径和文件名",
    "audio.folder": "{path}：这是文件夹，不是音频文件；请选择其中的文件",
    "audio.not_a_file": "{path}：不是普通文件；请选择音频或视频文件",
    "audio.unrecognized": (
        "{path}：按内容无法识别为可读取的音频或视频（扩展名：{suffix}）；"
        "请转换为以下格式之一：{supported}"
    ),
    "audio.permission": "{path}：没有读取权限；请让当前用户可以读取该文件",
    "audio.empty": "{path}：文件是空的（0 字节）；请重新录制或导出",
    "audio.no_samples": "{path}：不含任何音频采样；请重新录制或导出",
    "audio.video_without_audio": "{path}：视频没有音轨；请选择有声音的文件",
    "audio.no_audio_track": "{path}：没有音轨；请选择有声音的文件",
    "audio.codec": "{path}：不支持的音频编码“{codec}”；" + _REDO,
    "audio.unreadable_media": "{path}：无法读取的媒体文件（{detail}）；" + _REDO,
    "audio.unreadable": "{path}：无法读取的音频文件（{detail}）；" + _REDO,
    "audio.bad_header": "{path}：无法读取的音频文件（{detail}：文件头损坏或不是音频）；" + _REDO,
    "audio.decode_stopped": "{path}：解码到第 {samples} 个采样时失败（{detail}）；" + _REDO,
    "audio.undecodable": "{path}：无法解码任何音频（{detail}）：编码不受支持或数据损坏；" + _REDO,
    "audio.seek_failed": "{path}：无法回到开头（{detail}）；" + _REDO,
    "audio.span_after_end": (
        "{path}：片段 {start:.2f}–{end:.2f} 秒从音频结尾（{duration:.2f} 秒）之后开始；"
        "请选择文件内的片段"
    ),
    "audio.span_unreadable": (
        "{path}：这一段无法读取（{detail}）；请播放其他片段，或把文件转换为 WAV 或 FLAC 后重新打开"
    ),
    "audio.no_portaudio": (
        "未安装播放声音所需的 PortAudio 库；"
        "请安装 libportaudio2 软件包（make system-deps），然后重试"
    ),
    "microphone.query_failed": "无法查询音频系统（{detail}）；请检查它是否在运行",
    "microphone.no_portaudio": (
        "未安装 PortAudio 库，听写无法录音；"
        "请安装 libportaudio2 软件包（make system-deps），然后重试"
    ),
    "microphone.none": "未找到麦克风；请连接一个，或检查系统的声音设置",
    "microphone.not_connected": "麦克风“{device}”未连接；请从以下设备中选择：{names}",
    "microphone.refused": (
        "麦克风“{device}”拒绝访问（{detail}）；请允许本程序使用麦克风，并关闭占用它的其他程序"
    ),
    "microphone.open_failed": "无法打开麦克风“{device}”（{detail}）；请选择其他设备",
    "microphone.stalled": "麦克风“{device}”在录音中途停止传送音频；" + _MICROPHONE_LOST,
    "microphone.disappeared": "麦克风“{device}”在录音中途断开；" + _MICROPHONE_LOST,
    "recording.write_failed": (
        "无法写入录音 {path}（{detail}）；已写入磁盘的部分保留在那里；"
        "请释放该磁盘的空间，然后重新录音"
    ),
    "recording.write_failed_kept": (
        "无法写入录音 {path}（{detail}）；前 {seconds:.1f} 秒已保存在那里；"
        "请释放该磁盘的空间，然后重新录音"
    ),
    "recording.too_long": (
        "录音已达到 WAV 文件能容纳的最长时长（{hours:.1f} 小时），已停止；"
        "已录下的内容保存在 {path}；请开始新的录音以继续"
    ),
    "recording.failed": (
        "录音 {path} 因意外错误而停止（{detail}）；已录下的内容保存在那里；"
        "请开始新的录音以继续，并报告此错误"
    ),
    "lm.bad_folder": (
        "{path}：无法读取语言模型（{detail}）；请重新复制模型文件夹，"
        "或不用它解码（--decoder greedy）"
    ),
    "lm.domain_unreadable": "{path}：无法读取领域文本（{detail}）；请提供 UTF-8 文本文件",
    "lm.domain_empty": "{path}：领域文本里没有句子；请每行写一句",
    "lm.hotwords_unreadable": "{path}：无法读取热词（{detail}）；请提供 UTF-8 文本文件，每行一个词",
    "lm.hotwords_empty": (
        "{path}：其中没有可用的热词（去掉标点和空格后为空，或都含有模型写不出的字）；"
        "请每行写一个词，只用模型能写出的字"
    ),
    "lm.hotword_space_weight": (
        "{path} 第 {line} 行：{text!r} 以空格和数字结尾；权重应写在制表符之后，而不是空格之后："
        "请在数字前改用制表符，或删去空格让数字成为词的一部分"
    ),
    "lm.hotword_weight": (
        "{path} 第 {line} 行：{text!r} 中制表符后的权重不是有限的数字；"
        "请在制表符后写一个数字（每字奈特），或删去制表符"
    ),
    "lm.no_decoder": (
        "束搜索需要 flashlight-text 包（{detail}）；请用 `pip install flashlight-text` 安装，"
        "或用 --decoder greedy 解码"
    ),
    "lm.other_vocabulary": (
        "{path}：该语言模型只认识模型 {total} 个字中的 {known} 个（{percent}%），不到一半："
        "它是按别的词表（拼音、词或别的模型的字）做的；请换成按本模型的字训练的字符 n-gram，"
        "或删除模型文件夹中的 lm 文件夹"
    ),
    "lm.bad_setting": "{path}：{detail}；请改正该设置，或删除它以使用默认值",
    "lm.hotword_weight_range": (
        "{path} 第 {line} 行：{text!r} 的权重超出 ±{limit:g}；请给出 -{limit:g} 到 {limit:g} "
        "之间的权重（每字奈特），或不写以使用默认值"
    ),
    "lm.hotword_too_long": (
        "{path} 第 {line} 行：{text!r} 长 {length} 个字，超过热词的上限（{limit} 个字）；"
        "热词是名称或术语，每行一个：成段的文字请作为领域文本（--domain-text）给出"
    ),
    "recording.not_a_recording": "{path}：不是听写的录音（没有 WAV 文件头），无法恢复",
    "recording.repair_failed": (
        "{path}：无法修复（{detail}）；其中的音频仍保留在那里，下次启动时会再次提示恢复："
        "请关闭正在使用它的程序并使其可写，或在音频编辑器中按原始音频"
        "（16 kHz、单声道、16 位，跳过开头 44 字节）打开它"
    ),
    "recording.recover_failed": "{path}：无法恢复（{detail}）",
    "recording.folder": (
        "无法创建或写入录音文件夹 {path}（{detail}）；本次没有录音：请让它成为可写、且所在磁盘"
        "有空闲空间的文件夹（如有同名文件请移走），然后重新录音"
    ),
    "recording.scan_failed": "{folder}：无法查找未完成的录音（{detail}）",
    "transcribe.live_failed": "实时转写失败：{detail}；录音继续，停止后将从录音文件转写",
    "transcribe.out_is_file": (
        "{path} 是一个文件，而转写文件夹应在那里；请移动或重命名该文件，或另选输出文件夹"
    ),
    "transcribe.name_too_long": (
        "{path}：转写文件名 {name} 长 {length} 字节，超过文件名的上限（{limit}）；"
        "请重命名录音，或改用更短的文件名格式"
    ),
    "transcribe.watch_state_failed": (
        "{path}：无法在其中记下 {audio} 已完成（{detail}）；下次启动时会重做"
    ),
    "transcribe.watch_write_failed": (
        "无法写入 {paths}（{detail}），{audio} 的转写文件都未改动；请释放空间，或另选输出文件夹；"
        "下次启动时会重新转写"
    ),
    "transcribe.folder_in_the_way": (
        "{path} 是文件夹，而 {audio} 的转写文件应写在那里（录音已续录，转写会替换它之前的版本）；"
        "转写文件绝不会替换文件夹：请重命名或移走该文件夹，再重新启动监视（届时会转写该录音），"
        "或用 --out DIR 另选文件夹"
    ),
    "store.disk_full": (
        "{path}：磁盘已满，最后一次修改尚未保存；请释放空间（修改会保留，并随下一次修改一起保存）"
    ),
    "store.disk_full_not_done": "{path}：磁盘已满，未做任何更改；请释放空间后重试",
    "store.read_only": (
        "{path}：数据库是只读的，修改无法保存；"
        "请让该文件及其文件夹可写，或把 {variable} 设为可写的文件夹"
    ),
    "store.busy": "{path}：数据库正被其他程序使用；请关闭它后重试",
    "store.damaged": "{path}：数据库已损坏（{detail}）；请把它移走以新建数据库",
    "store.not_a_folder": (
        "{path}：{parent} 是文件而不是文件夹；请移走该文件，或为数据库另选一个位置"
    ),
    "store.cannot_open": "{path}：无法打开数据库（{detail}）；请确认文件夹可写",
    "punctuation.load_failed": (
        "{path}：无法加载标点模型（{detail}）；转写将不加标点。可用 "
        "`python -m engine.tune.punctuation_train` 重新训练"
    ),
    "punctuation.bad_option": "{option} {value} 太小；请设为 {least} 或更大",
    "punctuation.too_little_text": (
        "{path}：只有 {count} 行含有文字，训练至少需要 {least} 行；"
        "请给出至少 {least} 个带标点的句子，每行一句"
    ),
    "punctuation.out_unusable": (
        "--out {path}：训练好的模型无法保存在那里（{problem}）；"
        "请让它成为可写的文件夹，或用 --out DIR 另选一个"
    ),
    "punctuation.text_unreadable": (
        "--text {path}：无法读取（{detail}）；请给出 UTF-8 编码的文本文件，每行一个带标点的句子"
    ),
    "store.error": "{path}：数据库错误（{detail}）；修改未保存",
    "store.migration_failed": (
        "{path}：无法从第 {version} 版结构升级到第 {number} 版（{detail}）；"
        "文件保持在第 {version} 版：请保留一份副本并报告此问题"
    ),
    "store.newer_schema": (
        "{path}：由更新版本的听写创建（结构版本 {version} > {supported}）；"
        "请更新听写或换一个数据文件夹"
    ),
    "dataset.no_recording": "转写 {transcript} 没有录音，其中的改正无法生成音频片段",
    "dataset.clip_failed": "转写 {transcript}：{error}",
    "dataset.recording_missing": (
        "转写 {transcript} 的录音 {path} 不见了：请把它放回原处，或不用这条转写生成训练集"
    ),
    "dataset.recording_changed": (
        "{path} 与转写 {transcript} 不再相符：文件在转写之后改动过，切出的片段不会是校对过的文字；"
        "请重新转写并校对，或放回原来的文件"
    ),
    "dataset.recording_shorter": (
        "{path} 在 {duration:.2f} 秒处就结束了，而转写 {transcript} 长至 {end:.2f} 秒："
        "录音比它的转写短（转写之后改动过）；请重新转写，或放回原来的文件"
    ),
    "dataset.bad_name": "训练集名称“{name}”：须以字母或数字开头，只能使用字母、数字、“-”、“_”或“.”",
    "dataset.only_doubtful": (
        "含有已校对文字的 {segments} 个片段中仍有未核对的文字（存疑之处，或“全部改正”改动的地方），"
        "不能整段收入，而其中已核对的部分都短于 {seconds} 秒；请确认或改正其余存疑之处，"
        "或重新校对改动的地方（选中后按 Ctrl+Shift+R，再确认），然后重新生成训练集"
    ),
    "dataset.nothing_checked": (
        "这些转写中没有足够长的已校对文字可用于训练；请先确认或改正一些存疑之处"
    ),
    "dataset.write_failed": "{path}：无法写入训练集（{detail}）；请释放空间",
    "dataset.failed": "无法生成训练集“{name}”：{detail}",
    "dataset.not_recorded": (
        "训练集“{name}”已写入 {path}，但资料库未能记录它（{detail}）；"
        "请以同一名称重新生成并替换它，以便记录"
    ),
    "dataset.name_taken": (
        "训练集“{name}”应放在 {path}，但那里有 {found}，不是训练集（例如微调出的模型）；"
        "请换一个名称：那里的内容不会被替换"
    ),
    "dataset.none_chosen": "还没有选择数据；请添加训练集、文件夹或清单",
    "dataset.source_missing": (
        "数据 {source} 不存在；请选择清单文件（.tsv、.csv 或 .jsonl）或文件夹"
    ),
    "dataset.not_a_folder": "{folder} 不是文件夹；请选择存放音频和同名 .txt 文字的文件夹",
    "dataset.not_common_voice": "{folder} 不是 Common Voice 文件夹：其中应有 {tsv} 和 clips/",
    "dataset.manifest_missing": (
        "清单 {path} 不存在；请检查路径，并给出清单文件（.tsv、.csv 或 .jsonl）"
    ),
    "dataset.manifest_is_folder": (
        "{path} 是文件夹，不是清单；请给出其中的清单文件（.tsv、.csv 或 .jsonl）"
    ),
    "dataset.manifest_unreadable": "{path}：无法按 UTF-8 文本读取清单（{detail}）",
    "dataset.manifest_not_a_table": (
        '{path}：无法按表格读取（{detail}）；请查找开始一段文字却没有闭合的引号（"）'
    ),
    "dataset.manifest_empty": "{path} 是空的；请添加“path{delimiter}text”格式的行",
    "dataset.no_path_column": (
        "{path}：标题行的列名为 {columns}，但没有音频路径列（{names}）；"
        "请把存放路径的列改成其中一个名称"
    ),
    "dataset.no_text_column": (
        "{path}：标题行的列名为 {columns}，但没有文字列（{names}）；"
        "请把存放文字的列改成其中一个名称"
    ),
    "dataset.no_path_or_text_column": (
        "{path}：标题行的列名为 {columns}，但没有音频路径列（{path_names}），也没有文字列"
        "（{text_names}）；请把相应的列改成其中的名称"
    ),
    "dataset.none_usable": "{source}：{total} 行中没有一行可用（{found}）；请修正有问题的行",
    "dataset.source_is_audio": (
        "{path} 是录音，不是清单；请给出清单（含路径和文字的 .tsv、.csv 或 .jsonl）"
        "或存放清单的文件夹"
    ),
    "dataset.no_rows_to_score": (
        "{source} 中没有可评测的行；请给出标题行下有路径和文字的清单，或存放录音及其文字的文件夹"
    ),
    "dataset.none_to_score": (
        "{source}：没有剩下可评测的行（跳过了 {skipped} 行）；"
        "请修正或补全上面列出的行，然后重新运行"
    ),
    "dataset.row_no_transcript": "旁边没有同名文字文件 {name}",
    "dataset.row_transcript_unreadable": "文字文件无法按 UTF-8 读取：{detail}",
    "dataset.row_quote_runs_on": (
        '其中的引号（"）到第 {last} 行才闭合，第 {first}-{last} 行被读成了一行；'
        "请给每段文字完整地加上引号，或删去多余的引号"
    ),
    "dataset.row_too_few_columns": "只有 {count} 列；应有路径和文字两列",
    "dataset.row_tab_in_text": (
        "有 {count} 列，应为 {width} 列：文字中的制表符把它分开了；请删去制表符"
    ),
    "dataset.row_comma_in_text": (
        '有 {count} 列，应为 {width} 列：文字中的逗号把它分开了；请给文字加上双引号（"…"）'
    ),
    "dataset.row_bad_time": "“{value}”不是以秒为单位的时间",
    "dataset.row_bad_json": (
        '不是 JSON 对象（{detail}）；请每行写一个对象，例如 {{"audio": "clips/a.wav", "text": "…"}}'
    ),
    "dataset.row_json_keys": (
        "缺少音频或文字键（该行有 {keys}）；"
        "请用 {path_names} 之一指明音频，用 {text_names} 之一指明文字"
    ),
    "dataset.row_json_not_a_string": (
        '“{key}”的值是 {value}，不是字符串；请加上引号，例如 "{key}": "{example}"'
    ),
    "dataset.row_half_span": "{origin}：请同时给出开始和结束时间，或都不给",
    "dataset.row_empty_span": (
        "{origin}：片段 start={start} end={end} 为空或为负；结束时间须晚于开始时间"
    ),
    "dataset.row_span_past_end": "片段结束于 {end:.2f} 秒，但文件只有 {duration:.2f} 秒",
    "dataset.row_audio_missing": "{path} 不存在",
    "dataset.row_empty_text": "文字为空",
    "dataset.row_too_short": "时长 {seconds:.2f} 秒，短于下限 {limit} 秒",
    "dataset.row_too_long": "时长 {seconds:.1f} 秒，超过上限 {limit} 秒",
    "dataset.row_ctc_too_long": "需要 {labels} 个 CTC 标签，音频只有 {frames} 帧",
    "dataset.row_tokens_too_long": "有 {count} 个词元；模型的解码器最多接受 {limit} 个",
    "dataset.row_unknown_chars": "词表中没有：{chars}",
    "dataset.clips_shorter_than_mask": (
        "min_seconds={min_seconds} 保留了 {count} 段短于一个 SpecAugment 时间遮罩"
        "（mask_time_length={length} 帧，{mask_seconds} 秒）的训练片段，例如 {example}"
        "（{seconds:.2f} 秒）；请把 min_seconds 提高到 {mask_seconds} 以跳过它们，"
        "或减小 mask_time_length，或设 mask_time_prob: 0"
    ),
    "dataset.row_shorter_than_mask": (
        "时长 {seconds:.2f} 秒，短于一个 SpecAugment 时间遮罩"
        "（mask_time_length={length}，{mask_seconds} 秒）"
    ),
    "store.is_folder": "{path} 是文件夹而不是数据库文件；请指定其中的数据库文件（{file}）",
    "store.missing": (
        "{path}：没有这个转写库数据库；请检查路径，或不加 --db 以使用数据文件夹中的转写库"
        "（{default}）"
    ),
    "store.not_tingxie": (
        "{path}：不是听写的转写库（其中是其他程序的表：{tables}）；文件未作改动：请选择听写的数据库文件"
        "（tingxie.db）"
    ),
    "store.query_too_long": (
        "搜索文字长 {length} 个字符；请最多搜索 {limit} 个字符（其中的一句话就足以找到它）"
    ),
    "store.changed_elsewhere": (
        "{path}：第 {id} 篇转写在此打开后已在另一个窗口或用 tingxie-cli 修改，"
        "这里的修改未覆盖它；已按转写库中的内容重新载入：请再做一次修改"
    ),
    "store.no_transcript": (
        "{path}：第 {id} 篇转写已不在转写库中（已在另一个窗口或用 tingxie-cli 删除）；"
        "请从转写库的列表中另选一篇"
    ),
    "dataset.text_encoding": (
        "{path}：不是 UTF-8、UTF-16 或 GBK 编码的文本；"
        "请另存为 UTF-8（记事本：另存为，编码选 UTF-8）"
    ),
    "dataset.common_voice_no_tsv": (
        "{folder} 像是 Common Voice 文件夹（有 clips/ 和 {found}），但没有 {tsv}；"
        "请把要训练的 .tsv 作为清单添加（会在 clips/ 中查找其中的音频）"
    ),
    "dataset.common_voice_no_clips": (
        "{folder} 中有 {found}，但没有存放 Common Voice 音频的 clips/ 文件夹；"
        "请把 clips 压缩包解压到 {folder}，或选择含有 clips/ 的文件夹"
    ),
    "dataset.no_rows": (
        "{source} 中没有可训练的内容：清单的表头下没有行，或文件夹中没有音频和 .txt 文件；"
        "请选择存放录音及其文字的清单或文件夹"
    ),
    "dataset.row_no_audio": (
        "这个文字文件旁边没有名为 {name} 的录音；请把音频文件以同样的名字放在它旁边"
    ),
    "dataset.row_extra_columns": (
        "有 {count} 列，应为 {width} 列，多出的列是 {cells}：请在表头行中为每一列命名"
        "（path、text、start、end 等），或删去多余的单元格"
    ),
    "dataset.row_no_header_half_span": (
        "有 {count} 列但没有表头行，因此按 path、text、start、end 读取，"
        "而有开始时间就须有结束时间；"
        "请添加为各列命名的表头行（如 path、text、duration），或同时给出开始和结束时间"
    ),
    "dataset.row_number_joined": (
        "数字 {number} 会被当作 {joined} 训练（规范化会去掉数字之间的标点）；"
        "请按读音写出数字，例如把 2.5 写作 二点五"
    ),
    "dataset.row_repeated": "与 {first} 的音频和文字相同：不再使用，使这段音频只训练一次",
    "dataset.row_conflicting": (
        "{others} 给同一段音频写了不同的文字，每一行都会按所写的文字训练；请只保留文字正确的一行"
    ),
    "lm.domain_unusable": (
        "{path}：领域文本中没有模型能写出的字（是英文、拼音或其他文字？）；"
        "请提供用模型所写的字写成的句子，或不用领域文本"
    ),
}

STRINGS.update({f"error.{code}": (MESSAGES[code], zh) for code, zh in ZH.items()})

# code -> (English, Simplified Chinese) where the app's way out differs from the CLI's: the
# same parameters as engine.errors.MESSAGES[code].
APP: dict[str, tuple[str, str]] = {
    "model.no_onnx": (
        "The model folder {path} has no model.onnx, so it cannot run on ONNX Runtime: choose "
        "Model → Runtime → Automatic or PyTorch, or export it to ONNX first (Model → Export…) "
        "and choose the exported folder",
        "模型文件夹 {path} 中没有 model.onnx，无法用 ONNX Runtime 运行：请选择“模型 → 运行时 → "
        "自动”或“PyTorch”，或先把它导出为 ONNX（模型 → 导出…），再选择导出的文件夹",
    ),
    "model.onnx_only": (
        "{path} holds an ONNX export (model.onnx) and no PyTorch weights, and Model → Runtime "
        "is set to PyTorch: choose Model → Runtime → Automatic or ONNX Runtime to run it.",
        "{path} 是 ONNX 导出（model.onnx），没有 PyTorch 权重，而“模型 → 运行时”设为 "
        "PyTorch：请选择“模型 → 运行时 → 自动”或“ONNX Runtime”来运行它。",
    ),
    "model.pickle_only": (
        "model folder {path} has only pickle weights (pytorch_model.bin), which can run code "
        "when loaded, so Tingxie does not load it. If you trust where it came from, make a "
        "safetensors copy with `tingxie-cli export MODEL OUT --allow-pickle` (MODEL: this "
        "folder) and choose OUT (Model → Choose model…); to tune from it as it is, tick "
        "allow_pickle in Tune → How",
        "模型文件夹 {path} 只有 pickle 格式的权重（pytorch_model.bin），加载时可能执行其中的代码，"
        "因此听写不加载它。若确认来源可信，请用 `tingxie-cli export MODEL OUT --allow-pickle`"
        "（MODEL 为该文件夹）生成 safetensors 格式的副本，再选择 OUT（模型 → 选择模型…）；"
        "若要直接以它为基础微调，请在“微调 → 怎么训练”中勾选 allow_pickle",
    ),
    "model.hub_pickle_only": (
        "model {source!r} has only pickle weights (pytorch_model.bin) on the Hugging Face Hub, "
        "which can run code when loaded, so Tingxie neither downloads nor loads them. If you "
        "trust its author, make a safetensors copy with `tingxie-cli export {source} OUT "
        "--allow-pickle` and choose OUT (Model → Choose model…); to tune from it as it is, "
        "tick allow_pickle in Tune → How",
        "模型“{source}”在 Hugging Face Hub 上只有 pickle 格式的权重（pytorch_model.bin），"
        "加载时可能执行其中的代码，因此听写既不下载也不加载它们。若信任其作者，请用 "
        "`tingxie-cli export {source} OUT --allow-pickle` 生成 safetensors 格式的副本，"
        "再选择 OUT（模型 → 选择模型…）；若要直接以它为基础微调，请在“微调 → 怎么训练”中勾选 "
        "allow_pickle",
    ),
    "tune.pickle_only": (
        "base model {path} has only pickle weights (pytorch_model.bin), which can run code "
        "when loaded. If you trust where it came from, tick allow_pickle in Tune → How, or make "
        "a safetensors copy with `tingxie-cli export MODEL OUT --allow-pickle` and tune from OUT",
        "基础模型 {path} 只有 pickle 格式的权重（pytorch_model.bin），加载时可能执行其中的代码。"
        "若确认来源可信，请在“微调 → 怎么训练”中勾选 allow_pickle，或用 "
        "`tingxie-cli export MODEL OUT --allow-pickle` 生成 safetensors 格式的副本，再以 OUT 微调",
    ),
    "model.adapter_only": (
        "{path} is a LoRA adapter (adapter_config.json) without the model it adapts: choose the "
        "tuning job's model/ folder, or export the job as a Hugging Face folder (Model → "
        "Export…) and choose the exported folder",
        "{path} 是 LoRA 适配器（adapter_config.json），不含它所适配的模型：请选择微调任务的 "
        "model/ 文件夹，或把该任务导出为 Hugging Face 文件夹（模型 → 导出…），再选择导出的文件夹",
    ),
    "hub.no_adapter": (
        "{path} has no LoRA adapter (only a LoRA tuning job has one, in its adapter folder): "
        "untick “Share the LoRA adapter only” to share the model itself",
        "{path} 中没有 LoRA 适配器（只有 LoRA 微调任务才有，在其 adapter 文件夹中）："
        "请取消勾选“只分享 LoRA 适配器”，分享模型本身",
    ),
    "hub.offline": (
        "the Hugging Face Hub cannot be reached; {folder} is ready: when this computer is "
        "online, share it again to {repo_id} (Model → Share on the Hub…)",
        "无法连接 Hugging Face Hub；{folder} 已准备好：联网后，请再次分享到 {repo_id}"
        "（模型 → 分享到 Hub…）",
    ),
    "lm.bad_folder": (
        "{path}: the language model could not be read ({detail}); re-copy the model folder",
        "{path}：无法读取语言模型（{detail}）；请重新复制模型文件夹",
    ),
    "lm.hotword_too_long": (
        "{path} line {line}: {text!r} is {length} characters long, over the {limit} a hotword "
        "may have; a hotword is a name or term, one a line: choose running text as a domain "
        "text instead (Model → Language model → Domain text…)",
        "{path} 第 {line} 行：{text!r} 长 {length} 个字，超过热词的上限（{limit} 个字）；"
        "热词是名称或术语，每行一个：成段的文字请选作领域文本（模型 → 语言模型 → 领域文本…）",
    ),
    "lm.no_decoder": (
        "Beam search needs the flashlight-text package ({detail}): reinstall Tingxie, or turn "
        "off “Use the language model” in Model → Language model",
        "束搜索需要 flashlight-text 包（{detail}）：请重新安装听写，"
        "或在“模型 → 语言模型”中关闭“使用语言模型”",
    ),
    "transcribe.folder_in_the_way": (
        "{path} is a folder, where a transcript of {audio} goes (the recording resumed: its "
        "transcripts replace their earlier versions); a transcript never replaces a folder: "
        "rename or move that folder, and Tingxie transcribes the recording at its next start, "
        "or choose another output folder in File → Watch folders…",
        "{path} 是文件夹，而 {audio} 的转写文件应写在那里（录音已续录，转写会替换它之前的版本）；"
        "转写文件绝不会替换文件夹：请重命名或移走该文件夹，下次启动听写时会转写该录音；"
        "或在“文件 → 监视文件夹…”中另选输出文件夹",
    ),
    "transcribe.watch_write_failed": (
        "{paths} could not be written ({detail}), so none of the transcripts of {audio} "
        "changed; free some space, or choose another output folder in File → Watch folders…; "
        "Tingxie transcribes the recording again at its next start",
        "无法写入 {paths}（{detail}），{audio} 的转写文件都未改动；请释放空间，"
        "或在“文件 → 监视文件夹…”中另选输出文件夹；下次启动听写时会重新转写该录音",
    ),
}

STRINGS.update({f"app.error.{code}": wordings for code, wordings in APP.items()})


def error_text(error: object) -> str:
    """How `error` reads in the UI language: an engine error by its code (errors among its
    parameters too), anything else (an OSError, a message string) as its own text."""
    if not isinstance(error, TingxieError):
        return str(error)
    for key in (f"app.error.{error.code}", f"error.{error.code}"):
        if key in STRINGS:
            params = {
                name: error_text(value) if isinstance(value, BaseException) else value
                for name, value in error.params.items()
            }
            return tr(key, **params)
    return str(error)


def failure_text(failed: object) -> str:
    """A tuning child's `JobFailed` (engine.tune.events) in the UI language: worded from its
    error code and parameters where it carries them (the child wrote them in English), else
    its own line."""
    code, params = getattr(failed, "code", ""), dict(getattr(failed, "params", ()))
    if code in MESSAGES:
        try:
            return error_text(TingxieError(code, **params))
        except (KeyError, IndexError, ValueError):  # parameters that do not fit the wording
            pass
    return str(getattr(failed, "message", failed))
