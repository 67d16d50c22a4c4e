"""Build the synthetic-speech text sets (general, medicine, law) with fixed train / held-out splits.

Run from the repository root: `.venv/bin/python resources/corpus/build.py` (deterministic; the
output .txt files are committed, so this only runs again when the word lists change).

Why templates over hand-picked word lists: every sentence is written for the project from the
lists below, every word appears many times in varied contexts, and the character set is
controlled. Why homophone-free: a CTC model without a language model cannot tell apart
characters that sound the same, and espeak-ng speaks one tonal syllable the same way every time.
So within the general set, and within each domain set together with the general set, every
tonal syllable (pypinyin, tone 1-5) belongs to one character only; a word that would add a
second character for a syllable already taken is dropped, earlier words winning.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

from pypinyin import Style, pinyin

HERE = Path(__file__).resolve().parent
SEED = 20261125
GENERAL_SENTENCES = (1800, 200)  # train, held-out
DOMAIN_SENTENCES = (120, 40)

# fmt: off
PERSON = ["我", "你", "他", "我们", "你们", "他们", "老师", "学生", "妈妈", "爸爸", "哥哥", "姐姐",
          "弟弟", "妹妹", "朋友", "同学", "孩子", "爷爷", "奶奶", "邻居", "司机", "经理", "小王",
          "小李", "大家", "客人", "儿子", "女儿", "叔叔", "阿姨", "校长", "老板"]
TIME = ["今天", "明天", "昨天", "早上", "晚上", "中午", "下午", "周末", "现在", "每天", "去年",
        "明年", "刚才", "以后", "星期六", "春节", "夏天", "冬天", "秋天", "半夜", "平时"]
PLACE = ["家里", "学校", "公园", "商店", "饭馆", "车站", "机场", "图书馆", "办公室", "超市",
         "厨房", "花园", "城里", "山上", "海边", "楼下", "门口", "河边", "北京", "上海", "村子里",
         "广场", "银行", "宿舍", "教室", "体育馆", "咖啡馆", "菜市场", "湖边", "动物园"]
ACTIVITY = ["看书", "看电影", "吃饭", "喝茶", "喝咖啡", "买菜", "做饭", "写字", "唱歌", "跳舞",
            "打球", "游泳", "跑步", "开车", "洗衣服", "打电话", "听音乐", "学中文", "画画",
            "休息", "睡觉", "上班", "下班", "买水果", "骑自行车", "照相", "聊天", "散步",
            "找钥匙", "种花", "洗碗", "打扫房间", "复习功课", "准备晚饭", "送礼物", "拿雨伞",
            "换衣服", "包饺子", "爬山", "钓鱼", "逛街", "弹钢琴", "踢足球", "喂小鸟", "擦窗户",
            "收拾行李", "读报纸", "练书法", "做作业", "看新闻", "煮面条", "切西瓜", "搬桌子",
            "修电脑", "寄信", "订机票", "租房子", "借词典", "还铅笔", "排队", "滑冰", "划船"]
ADJ = ["好", "忙", "累", "冷", "热", "高兴", "漂亮", "干净", "便宜", "贵", "舒服", "安静",
       "热闹", "方便", "快", "慢", "远", "近", "新鲜", "好吃", "可爱", "聪明", "认真", "有意思",
       "暖和", "凉快", "辛苦", "简单", "麻烦", "重要", "奇怪", "年轻", "胖", "瘦", "甜", "酸",
       "香", "脏", "旧", "响亮", "整齐", "轻松", "紧张", "幸福", "危险", "厚", "薄"]
THING = ["天气", "房间", "衣服", "水果", "咖啡", "电影", "房子", "汽车", "手机", "电脑", "小猫",
         "小狗", "照片", "故事", "蛋糕", "米饭", "鸡蛋", "牛奶", "苹果", "鞋子", "帽子", "椅子",
         "空气", "风景", "声音", "颜色", "裙子", "面包", "月亮", "太阳", "草地", "树叶", "火车",
         "飞机", "音乐", "节目", "比赛", "沙发", "被子", "杯子", "盘子", "筷子", "玩具", "袜子",
         "灯", "床", "门", "河水", "雪", "雨"]
DEGREE = ["很", "非常", "特别", "真", "有点", "比较", "挺", "越来越"]
MODAL = ["想", "要", "喜欢", "打算", "应该", "可以", "会", "不想", "愿意", "需要", "希望", "必须"]

MEDICINE = {
    "noun": ["血压", "体温", "心脏", "肝脏", "肺部", "胃口", "伤口", "症状", "炎症", "病毒",
             "细菌", "疫苗", "药片", "剂量", "处方", "病历", "血糖", "脉搏", "骨折", "肿瘤"],
    "act": ["挂号", "抽血", "打针", "输液", "拍片子", "量体温", "做手术", "开处方", "复诊",
            "住院", "出院", "吃药", "验尿", "测血糖", "做胃镜", "换药", "拔牙", "接种疫苗"],
    "who": ["医生", "护士", "病人", "患者", "大夫", "药剂师", "主任"],
    "adj": ["偏高", "偏低", "正常", "严重", "稳定", "发炎", "感染", "过敏", "疼痛", "肿胀"],
    "place": ["医院", "诊所", "病房", "急诊科", "药房", "门诊"],
}
LAW = {
    "noun": ["合同", "证据", "条款", "判决", "罚款", "赔偿", "遗嘱", "专利", "诉状", "案件",
             "证词", "债务", "租约", "许可证", "抵押", "股权", "商标", "契约", "辩护词", "罪名"],
    "act": ["起诉", "上诉", "签署合同", "出庭", "作证", "调解", "仲裁", "立案", "审理案件",
            "提交证据", "申请专利", "缴纳罚款", "执行判决", "撤诉", "公证", "辩护", "索赔",
            "宣判", "取保候审"],
    "who": ["律师", "法官", "原告", "被告", "证人", "检察官", "陪审员", "当事人", "公证员"],
    "adj": ["有效", "无效", "违法", "合法", "违约", "侵权", "生效", "终审", "败诉", "胜诉"],
    "place": ["法院", "律师事务所", "法庭", "检察院", "仲裁庭", "公证处"],
}
# fmt: on

GENERAL_TEMPLATES = [
    "{time}{person}{modal}去{place}{activity}",
    "{person}{time}在{place}{activity}",
    "{place}的{thing}{degree}{adj}",
    "{person}觉得{thing}{degree}{adj}",
    "{time}的{thing}{degree}{adj}",
    "{person}跟{person2}一起{activity}",
    "{person}每天都{activity}",
    "{person}把{thing}放在{place}了",
    "{time}{person}没有{activity}",
    "{person}说{place}的{thing}{degree}{adj}",
    "{person}{modal}{activity}因为{thing}{degree}{adj}",
    "{time}{person}和{person2}在{place}{activity}",
]
DOMAIN_TEMPLATES = [
    "{who}说{person}的{noun}{adj}",
    "{time}{person}去{dplace}{act}",
    "{who}{time}在{dplace}{act}",
    "{person}{modal}{act}因为{noun}{adj}",
    "{who}告诉{person}{noun}{degree}{adj}",
    "{person}的{noun}{adj}{who}让他{act}",
    "{time}{who}和{person}一起{act}",
]


@cache
def syllables(text: str) -> tuple[tuple[str, str], ...]:
    """(character, tonal syllable) pairs as pypinyin reads the text in context."""
    marks = pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, heteronym=False)
    return tuple((ch, s[0]) for ch, s in zip(text, marks, strict=True))


def keep_homophone_free(words: list[str], taken: dict[str, str]) -> list[str]:
    """Words whose every syllable is free or already owned by the same character; claims them."""
    kept = []
    for word in words:
        pairs = syllables(word)
        if all(taken.get(syl, ch) == ch for ch, syl in pairs):
            kept.append(word)
            for ch, syl in pairs:
                taken.setdefault(syl, ch)
    return kept


def homophones(sentences: list[str]) -> dict[str, set[str]]:
    """Syllables spoken by more than one character in these sentences."""
    owners: dict[str, set[str]] = defaultdict(set)
    for sentence in sentences:
        for ch, syl in syllables(sentence):
            owners[syl].add(ch)
    return {syl: chars for syl, chars in owners.items() if len(chars) > 1}


def fill(
    templates: list[str], lists: dict[str, list[str]], n: int, rng: random.Random
) -> list[str]:
    """n distinct sentences; words drawn round-robin from shuffled lists so each is used evenly."""
    pools: dict[str, list[str]] = {k: [] for k in lists}

    def draw(key: str) -> str:
        if not pools[key]:
            pools[key] = rng.sample(lists[key], len(lists[key]))
        return pools[key].pop()

    out: dict[str, None] = {}
    attempts = 0
    while len(out) < n and attempts < n * 50:
        attempts += 1
        template = templates[attempts % len(templates)]
        values = {k: draw(k) for k in lists if "{" + k + "}" in template}
        if values.get("person2") == values.get("person"):
            continue
        out[template.format(**values)] = None
    return list(out)


def clean(sentences: list[str], reference: list[str]) -> list[str]:
    """Drop sentences holding the rarer character of any homophone pair (counting `reference`)."""
    while True:
        clash = homophones(reference + sentences)
        if not clash:
            return sentences
        counts = Counter(ch for s in reference + sentences for ch in s)
        kept = set("".join(reference))
        losers = set()
        for chars in clash.values():
            ranked = sorted(chars, key=lambda c: (c not in kept, -counts[c], c))
            losers.update(ranked[1:])
        sentences = [s for s in sentences if not losers & set(s)]


def build() -> dict[str, list[str]]:
    rng = random.Random(SEED)
    taken: dict[str, str] = {}
    general = {
        "person": keep_homophone_free(PERSON, taken),
        "time": keep_homophone_free(TIME, taken),
        "place": keep_homophone_free(PLACE, taken),
        "activity": keep_homophone_free(ACTIVITY, taken),
        "adj": keep_homophone_free(ADJ, taken),
        "thing": keep_homophone_free(THING, taken),
        "degree": keep_homophone_free(DEGREE, taken),
        "modal": keep_homophone_free(MODAL, taken),
    }
    frame = "去在的觉得跟一起每天都把放了没有说因为和告诉让他"
    keep_homophone_free(list(frame), taken)
    general["person2"] = general["person"]
    total = sum(GENERAL_SENTENCES)
    sentences = clean(fill(GENERAL_TEMPLATES, general, total * 2, rng), [])[:total]
    sets = {"general/train": sentences[: GENERAL_SENTENCES[0]]}
    sets["general/heldout"] = sentences[GENERAL_SENTENCES[0] :]
    general_chars = set("".join(sentences))
    for name, domain in (("medicine", MEDICINE), ("law", LAW)):
        dtaken = dict(taken)
        lists = {
            k: [w for w in keep_homophone_free(v, dtaken) if not set(w) <= general_chars]
            for k, v in domain.items()
        }
        lists["dplace"] = lists.pop("place")
        for k in ("person", "time", "modal", "degree"):
            lists[k] = general[k]
        n = sum(DOMAIN_SENTENCES)
        dsent = clean(fill(DOMAIN_TEMPLATES, lists, n * 4, rng), sentences)[:n]
        sets[f"{name}/train"] = dsent[: DOMAIN_SENTENCES[0]]
        sets[f"{name}/heldout"] = dsent[DOMAIN_SENTENCES[0] :]
    return sets


def main() -> None:
    for name, sentences in build().items():
        path = HERE / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        chars = set("".join(sentences))
        print(f"{name}: {len(sentences)} sentences, {len(chars)} characters")


if __name__ == "__main__":
    main()
