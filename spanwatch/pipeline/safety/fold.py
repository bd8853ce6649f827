"""Folding text for matching while keeping character offsets: full-width -> half-width,
case, and the most common traditional Chinese characters -> simplified.

Every mapping is one character to one character, so an offset into the folded text is the
same offset into the original: findings point at the user's text, not at a copy.
"""

from __future__ import annotations

# Full-width ASCII (U+FF01..U+FF5E) -> ASCII, ideographic space -> space.
_WIDTH = {0xFF01 + i: 0x21 + i for i in range(0x5E)} | {0x3000: 0x20}

# Traditional -> simplified for characters frequent in sensitive-word lexicons. A full
# conversion (OpenCC) needs phrase tables; one-to-one characters are the cheap part.
_TRAD = (
    "國国 們们 個个 來来 對对 時时 會会 說说 這这 們们 為为 後后 發发 無无 與与 開开 關关 "
    "學学 經经 過过 動动 還还 點点 問问 體体 機机 長长 東东 車车 門门 見见 聽听 頭头 "
    "買买 賣卖 錢钱 槍枪 彈弹 毒毒 藥药 賭赌 騙骗 詐诈 殺杀 爆爆 炸炸 黨党 獨独 軍军 "
    "暴暴 亂乱 貸贷 傳传 銷销 號号 碼码 帳账 戶户 銀银 證证 護护 機机 臺台 灣湾 "
    "習习 總总 統统 選选 舉举 權权 義义 產产 劃划 達达 運运 歲岁 麼么 裡里 邊边 "
    "從从 讓让 給给 覺觉 認认 識识 話话 請请 誰谁 記记 讀读 寫写 語语 論论 議议 "
    "指指 令令 忽忽 視视 規规 則则 限限 製制 隱隐 藏藏 模模 式式 示示 詞词 "
)
_TRAD_MAP = {ord(p[0]): ord(p[1]) for p in _TRAD.split() if len(p) == 2 and p[0] != p[1]}
_TABLES = {(True, True): _WIDTH | _TRAD_MAP, (True, False): _WIDTH, (False, True): _TRAD_MAP}


def fold(text: str, *, width: bool = True, case: bool = True, traditional: bool = True) -> str:
    """The text folded for matching; ``len(fold(t)) == len(t)`` always."""
    table = _TABLES.get((width, traditional))
    out = text.translate(table) if table else text
    if case:
        lowered = out.lower()
        # str.lower() is 1:1 except for a few letters (e.g. U+0130 'İ' -> 'i̇'): keep offsets
        if len(lowered) == len(out):
            out = lowered
        else:
            out = "".join(c if len(lc := c.lower()) != 1 else lc for c in out)
    return out
