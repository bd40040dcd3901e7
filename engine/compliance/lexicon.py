"""Multilingual word lists (en, de, fr, it, es, ja, zh), compiled once at import into RE2 patterns.

Latin-script entries are regex fragments matched case-insensitively between non-letters (so
"PayPalで" still matches in Japanese text); CJK entries are matched anywhere. Entries are chosen to be
specific: "セール" is hidden by the stop phrase "セールス" (sales), an ordinary word. The gate matches them
against normalised text (NFKC, look-alike letters folded, invisible characters removed) and again
against its squeezed form, where "W e C h a t" reads "WeChat".
"""

from __future__ import annotations

from engine.compliance.matcher import Keywords, alternatives, compile_re2

_alts = alternatives


def words(latin: str = "", cjk: str = "", *, stop: str = "", cased: bool = False) -> Keywords:
    """One keyword list; `\\w` means a Latin letter or digit."""
    return Keywords(_any_letter(latin), _any_letter(cjk), stop=_any_letter(stop), cased=cased)


def _any_letter(fragment: str) -> str:
    # Latin letters only: Unicode-wide classes under case folding slow RE2's DFA down tenfold
    return fragment.replace(r"\w", r"[a-z0-9\x{c0}-\x{24f}_]")


# The word lists below are laid out by language, several per line: keep that layout.
# fmt: off

# --- context for digit runs (see contacts.find_phones) -----------------------------------------------

ID_KEYWORDS = words(
    _alts(
        r"order(?:\s*(?:id|number|no\.?|#))?", r"bestell\w*", r"auftrag\w*", "commande", "ordine", "pedido",
        r"tracking(?:[\s-]*(?:id|number|no\.?|code|nummer|numero|número))?", r"track(?:ing)?-?id",
        r"sendungs\w*", r"paket\w*", "suivi", "colis", "spedizione", "seguimiento", "env[ií]o", "waybill",
        r"shipment(?:\s*(?:id|number))?", r"parcel(?:\s*(?:id|number))?", "consignment",
        r"serial(?:\s*(?:number|no\.?))?", r"serien\w*", "s[ée]rie", "seriale", "s/n", "sn",
        r"model(?:\s*(?:number|no\.?))?", r"modell\w*", "mod[èe]le", "modello", "modelo",
        "asin", "isbn", "ean", "sku", "upc", "gtin", "mpn", r"artikel\w*", "article", "articolo",
        "art[ií]culo",
        r"item(?:\s*(?:number|no\.?))?", r"part(?:\s*(?:number|no\.?))?", r"teile\w*",
        r"invoice(?:\s*(?:number|no\.?))?", r"rechnung\w*", "facture", "fattura", "factura", "receipt",
        r"ref\.?", "reference", "referenz", "r[ée]f[ée]rence", "riferimento", "referencia", "rma",
        r"case(?:\s*(?:id|number))?", "ticket", r"vorgang\w*", "caso", "dossier", "pratica",
        "plz", "postcode", "post code", r"zip(?:\s*code)?", "code postal", "cap", "c[óo]digo postal",
        "lot", "batch", "lotto", "lote", r"charge\w*", r"no\.", r"nr\.", "n[°º]",
        # carriers: a number right after a carrier's name is its tracking number
        "dhl", "ups", "fedex", "gls", "dpd", "hermes", "usps", r"royal\s+mail", "colissimo", "chronopost",
        "brt",
        "sda", "correos", "seur", "yamato", "sagawa", "ems", r"japan\s+post", "poste", "evri",
    ),
    _alts(
        "注文番号", "注文", "追跡番号", "追跡", "お問い合わせ番号", "問い合わせ番号", "問合せ番号",
        "伝票番号",
        "送り状番号", "配送番号", "製造番号", "シリアル", "型番", "品番", "郵便番号", "〒", "订单号",
        "订单", "訂單",
        "运单号", "运单", "快递单号", "单号", "追踪号", "跟踪号", "序列号", "型号", "型號", "编号", "货号",
        "邮编",
        "发票号", "批号", "ヤマト", "佐川", "日本郵便", "ゆうパック", "顺丰", "中通", "圆通", "申通",
        "韵达", "京东",
    ),
)

PHONE_KEYWORDS = words(
    _alts(
        "phone", "telephone", r"tel\.?", r"call(?:\s+us)?", "mobile", "cell", "hotline", "helpline", "fax",
        "sms", "text us", r"telefon\w*", r"handy\w*", "mobil", "mobilnummer", "rufnummer", "anrufen", "rufen",
        "erreichbar", "t[ée]l[ée]phone", r"t[ée]l\.?", r"appel\w*", "portable", "joindre", "num[ée]ro vert",
        "telefono", "cellulare", r"chiam\w*", "numero verde", "tel[ée]fono", r"tlf\.?", "m[óo]vil", "celular",
        r"llam\w*", r"whats\s?app",
    ),
    _alts(
        "電話", "电话", "携帯", "手机", "联系方式", "聯絡", "联系", "連絡先", "致电", "拨打", "热线", "TEL",
        "フリーダイヤル", "ナビダイヤル",
    ),
)

# --- messengers and social media ---------------------------------------------------------------------

MESSENGER = words(
    _alts(
        r"whats[\s-]?app", r"we[\s-]?chat", "weixin", "telegram", "skype", "viber", "instagram", "insta",
        "facebook",
        "fb", r"tik[\s-]?tok", "snapchat", "pinterest", "youtube", "twitter", r"kakao[\s-]?talk", "discord",
        "weibo",
        "xiaohongshu", "threema", r"line[\s-]?id",
        r"(?:via|on|über|per|auf|sur|par|su|tramite|por|en)\s+signal",
        r"signal[\s-](?:app|messenger|chat)",
        r"(?:加|\+)\s?(?:vx|wx|v)",
    ),
    _alts(
        "微信", "威信", "薇信", "V信", "抖音", "小红书",
        "微博",
        r"ライン\s?(?:ID|id)", "インスタ", "フェイスブック", "ツイッター", "テレグラム", "スカイプ", "脸书",
        "推特",
        "电报", "钉钉",
    ),
)
# Brand names that are ordinary words in lower case: only their exact spelling counts.
MESSENGER_CASED = words(r"QQ|LINE", "QQ号|LINE(?:ID|公式|@)", cased=True)
# "@shop_name"; the character before it and a trailing dot are checked by the detector
SOCIAL_HANDLE = compile_re2(r"@[A-Za-z0-9_][A-Za-z0-9_.]{1,29}")

# --- sale or payment off Amazon ----------------------------------------------------------------------

OFF_AMAZON = words(
    _alts(
        r"pay[\s-]?pal", "venmo", "zelle", r"western\s+union", "moneygram", r"cash\s?app", "alipay", "revolut",
        "bizum", "satispay", "postepay", "paysafecard", "bitcoin", r"crypto(?:currency)?",
        r"bank\s?transfer", r"wire\s+transfer", r"direct\s+(?:bank\s+)?deposit",
        r"bank\s+(?:account|details)",
        r"account\s+number", "iban", "bic", r"swift(?:\s+code)?", r"sort\s+code", r"routing\s+number",
        r"pay(?:ment)?\s+(?:in\s+|with\s+|by\s+)?cash", r"cash\s+payment", r"in\s+cash",
        r"cash\s+on\s+delivery",
        r"our\s+(?:own\s+)?(?:web\s?shop|online\s+(?:shop|store)|website|web\s+site|homepage|e-?shop)",
        r"(?:buy|order|purchase)(?:\s+(?:it|them|this|one))?\s+directly\s+(?:from|with|through)\s+us",
        r"directly\s+(?:from|on|via)\s+our\s+(?:website|shop|store)", r"outside\s+(?:of\s+)?amazon",
        r"off\s+amazon", "ebay", "etsy", "aliexpress", "shopify",
        r"\w*überweis\w*", "vorkasse", "barzahlung", r"bar\s+(?:be)?zahlen", r"in\s+bar", "bankverbindung",
        "kontonummer", "kontodaten",
        r"unser(?:em|en|er|e)?\s+(?:eigenen\s+)?(?:online-?shop|webshop|web-shop|website|homepage|internetseite)",
        r"direkt\s+bei\s+uns\s+(?:bestellen|kaufen)", r"außerhalb\s+(?:von\s+)?amazons?",
        r"virement(?:\s+bancaire)?", r"coordonn[ée]es\s+bancaires", "rib", r"en\s+esp[èe]ces",
        r"en\s+liquide",
        r"notre\s+(?:site(?:\s+(?:web|internet))?|boutique\s+(?:en\s+ligne|web)|e-?boutique)",
        r"directement\s+(?:chez|aupr[èe]s\s+de)\s+nous", r"(?:en\s+dehors|hors)\s+d'\s?amazon",
        r"hors\s+amazon",
        r"bonifico(?:\s+bancario)?", r"coordinate\s+bancarie", r"in\s+contanti",
        r"(?:il\s+)?nostro\s+(?:sito(?:\s+(?:web|internet))?|negozio\s+online|e-?shop|shop\s+online)",
        r"direttamente\s+da\s+noi", r"(?:al\s+di\s+)?fuori\s+da?\s*amazon",
        r"transferencia(?:\s+bancaria)?", r"datos\s+bancarios", r"cuenta\s+bancaria", r"en\s+efectivo",
        r"nuestra\s+(?:tienda\s+(?:online|web|en\s+l[ií]nea)|p[áa]gina\s+web|web)",
        r"nuestro\s+(?:sitio(?:\s+web)?|e-?shop)", r"directamente\s+(?:con|a)\s+nosotros",
        r"fuera\s+de\s+amazon",
        # what sellers write to pull the next order to their own shop, in each language
        r"(?:order|buy|purchase|shop)\w*(?:\s+\w+){0,3}\s+directly\s+(?:from|with|through|at|on|via)\s+(?:us|our)",
        r"next\s+time,?(?:\s+\w+){0,4}\s+(?:directly|from\s+us|on\s+our|at\s+our|via\s+our)",
        r"our\s+(?:own\s+)?(?:web\s?site|site|online\s+shop|web\s?store|e-?store)",
        r"regist\w*(?:\s+\w+){0,4}\s+(?:on|at|via|with)\s+our", r"sign\s+up\s+on\s+our",
        r"create\s+an\s+account\s+(?:on|at|with)\s+our", r"(?:on|at)\s+our\s+(?:own\s+)?(?:shop|store)\s+directly",
        r"(?:beim\s+)?n[äa]chste[ns]?\s+mal(?:\s+\w+){0,4}\s+direkt", r"direkt\s+(?:bei|über|in|auf|von)\s+uns",
        r"direkt\s+(?:bei|über|in|auf|von)\s+unsere[mnrs]?\s+(?:eigenen\s+)?\w*(?:shop|seite|website|homepage)",
        r"unser(?:em|en|er|e)?\s+(?:eigenen\s+)?(?:shop|onlineshop|webseite|seite)",
        r"registrieren\s+sie\s+sich(?:\s+\w+){0,4}\s+(?:auf|bei|in|unter)\s+unsere[mnrs]?",
        r"commande[rz]?(?:\s+\w+){0,3}\s+directement", r"ach(?:e|è)te[rz]?(?:\s+\w+){0,3}\s+directement",
        r"directement\s+sur\s+notre", r"inscri(?:vez|re|ption)(?:-vous)?(?:\s+\w+){0,3}\s+sur\s+notre",
        r"la\s+prochaine\s+fois,?(?:\s+\w+){0,4}\s+(?:directement|chez\s+nous|sur\s+notre)",
        r"(?:ordin|acquist|compr)\w*(?:\s+\w+){0,3}\s+direttamente", r"direttamente\s+(?:sul|dal|nel)\s+nostro",
        r"registr(?:at[io]|arsi|azione)(?:\s+\w+){0,3}\s+(?:sul|al|nel)\s+nostro",
        r"la\s+prossima\s+volta,?(?:\s+\w+){0,4}\s+(?:direttamente|da\s+noi|sul\s+nostro)",
        r"(?:pid|compr|ped|encarg)\w*(?:\s+\w+){0,3}\s+directamente", r"directamente\s+en\s+nuestr[oa]",
        r"reg[ií]str(?:ese|ate|arse|o)(?:\s+\w+){0,3}\s+en\s+nuestr[oa]",
        r"la\s+pr[óo]xima\s+vez,?(?:\s+\w+){0,4}\s+(?:directamente|con\s+nosotros|en\s+nuestr[oa])",
        r"nossa\s+(?:loja|p[áa]gina|site)", r"nosso\s+site", r"diretamente\s+(?:conosco|com\s+a\s+gente)",
        r"onze\s+(?:eigen\s+)?(?:webshop|website|winkel)", r"rechtstreeks\s+bij\s+ons",
        r"nasz(?:ym|ego|a)?\s+(?:sklep\w*|stron\w*)", r"bezpośrednio\s+u\s+nas",
        r"vår\s+(?:webbutik|hemsida|webbplats)", r"direkt\s+(?:hos|från)\s+oss",
        r"regist\w*(?:\s+\w+){0,6}\s+(?:insert|package|thank[\s-]you|warranty|registration)\s+card",
        r"(?:insert|package|thank[\s-]you)\s+card(?:\s+\w+){0,8}\s+regist\w*",
        r"registrier\w*(?:\s+\w+){0,6}\s+\w*(?:beilage|einlege|garantie|produkt|dankes)karte",
        r"\w*(?:beilage|einlege|dankes)karte(?:\s+\w+){0,8}\s+registrier\w*",
        r"web\s+sitemiz\w*", r"sitemiz\w*", r"mağazamız\w*", r"doğrudan\s+bizden",
    ),
    _alts(
        "銀行振込", "振込", "振り込み", "お振込", "口座番号", "銀行口座", "現金", "自社サイト",
        "公式サイト", "公式ショップ",
        "公式オンラインショップ", "当店の?(?:ホームページ|サイト|ウェブサイト|ネットショップ)",
        "直接(?:購入|取引|お取引|ご注文)",
        "(?:Amazon|アマゾン)以外", "Amazon外", "楽天", "ヤフオク", "メルカリ", "PayPay",
        "银行转账", "銀行轉帳", "转账", "汇款", "匯款", "银行账户", "银行卡号", "现金", "官网", "官方网站",
        "独立站",
        "我们的网店", "我们的网站", "淘宝", "天猫", "拼多多", "支付宝", "私下交易", "直接(?:购买|交易|下单)",
        "亚马逊(?:以外|之外)", "站外",
        "次回(?:から|は)?(?:直接|当店)", "直接(?:当店|弊社)",
        "当店(?:の)?(?:公式)?(?:サイト|ホームページ|ショップ|オンラインストア)で",
        "会員登録", "弊社(?:の)?(?:サイト|ホームページ|ウェブサイト|オンラインショップ)",
        "下次(?:可以)?直接", "直接(?:找|联系|聯繫)(?:我们|我們)", "注册(?:会员|账号|帳號)", "註冊(?:會員|帳號)",
        "(?:在|到|上)我们的(?:网站|官网|店铺|网店|商城)", "我们的(?:官方)?(?:商城|店铺网站)", "私聊",
    ),
)

# --- QR codes: a code to scan is a link (reported by the link rule) ----------------------------------

QR_INVITATION = words(
    _alts(
        r"qr[\s-]?(?:codes?|code-?s?|codice|codici|c[óo]digos?|kod\w*|koden?|kodu)",
        r"scan\w*(?:\s+\w+){0,3}\s+qr(?:[\s-]?\w+)?",
        r"(?:codes?|codice|c[óo]digo|kod)\s+qr", r"scan(?:\s+\w+){0,4}\s+(?:to|and)\s+regist\w*",
        r"scann(?:en|ez|a|e)(?:\s+\w+){0,4}\s+(?:und|et|e|y)\s+regist\w*",
    ),
    _alts("二维码", "二維碼", "扫码", "掃碼", "扫一扫", "掃一掃", "QRコード", "バーコードを読み取", "コードを読み取"),
)

# --- marketing ---------------------------------------------------------------------------------------

MARKETING = words(
    _alts(
        r"coupons?", r"discount\s+codes?", r"promo(?:tional|tion)?\s+codes?", r"vouchers?(?:\s+codes?)?",
        r"promotions?", r"(?:special|exclusive)\s+offers?",
        r"(?:on|big|flash|clearance|summer|winter)\s+sale",
        r"newsletters?", r"subscribe\s+to\s+our", r"sign\s+up\s+(?:for|to)\s+our", r"mailing\s+list",
        r"follow\s+us", r"check\s+out\s+our", r"take\s+a\s+look\s+at\s+our\s+(?:other|new)",
        r"our\s+(?:other|new|latest)\s+(?:products|items|collection|arrivals|models)", r"new\s+arrivals",
        r"you\s+(?:might|may)\s+also\s+like", r"\d+\s?%\s?off", r"black\s+friday", r"cyber\s+monday",
        r"gutschein\w*", r"rabatt-?codes?", r"rabattaktion\w*", r"aktionscodes?", r"promo-?codes?",
        r"sonderangebot\w*", r"unsere[nm]?\s+(?:anderen|weiteren|neuen)\s+(?:produkte|artikel)", "neuheiten",
        r"abonnieren\s+sie", r"folgen\s+sie\s+uns", r"\d+\s?%\s?rabatt",
        r"codes?\s+promo", r"codes?\s+de\s+r[ée]duction", r"bons?\s+de\s+r[ée]duction",
        r"offres?\s+sp[ée]ciales?",
        "soldes", r"nos\s+(?:autres|nouveaux)\s+produits", r"nos\s+nouveaut[ée]s", r"abonnez-vous",
        r"suivez-nous", r"\d+\s?%\s?de\s+r[ée]duction",
        r"codic[ei]\s+sconto", r"codic[ei]\s+promozional[ei]", r"buon[io]\s+sconto", r"promozion[ei]",
        r"offert[ae]\s+special[ei]", "saldi", r"(?:i\s+)?nostri\s+(?:altri|nuovi)\s+prodotti", "iscriviti",
        "seguici", r"\d+\s?%\s?di\s+sconto",
        r"cup[oó]n(?:es)?", r"c[óo]digos?\s+de\s+descuento", r"c[óo]digos?\s+promocional(?:es)?",
        r"promoci(?:ón|on|ones)", r"ofertas?\s+especial(?:es)?", r"bolet[íi]n", "rebajas",
        r"nuestros\s+(?:otros|nuevos)\s+productos", r"suscr[íi]bete", r"s[íi]guenos",
        r"\d+\s?%\s?de\s+descuento",
    ),
    _alts(
        "クーポン", "割引コード", "プロモーションコード", "キャンペーン", "セール", "メルマガ",
        "メールマガジン",
        "ニュースレター", "他の商品も", "当店の他の商品", "新商品のご案内", "新製品のご案内",
        "おすすめ商品", "フォローして",
        r"\d+\s?%\s?(?:OFF|off|オフ)", "优惠券", "優惠券", "优惠码", "折扣码", "促销", "促銷", "新品上市",
        "新品推荐",
        "我们的其他产品", "店铺的其他产品", "其他产品推荐", "看看我们的", "关注我们", "关注店铺", "订阅",
        "打折", "满减",
        "限时优惠", r"\d+折",
    ),
    stop="セールス",
)

# --- review and feedback manipulation (combined per sentence in detectors.find_review_manipulation) --

REVIEW_WORDS = words(
    _alts(
        r"reviews?", "feedback", r"(?:seller|product|star)\s+ratings?",
        r"rate\s+(?:us|the\s+(?:product|item|seller))",
        "testimonial", r"(?:5|five|fünf|cinq|cinque|cinco)[\s-]?(?:stars?|sterne\w*|[ée]toiles|stelle|estrellas)",
        r"bewertung\w*", r"rezension\w*", "bewerten", "avis", r"commentaires?",
        r"[ée]valuations?",
        "[ée]valuer", r"recension[ei]", r"valutazion[ei]", "valutare", "valutarci", r"rese[ñn]as?",
        "opiniones",
        "opini[óo]n", r"valoraci(?:ón|on|ones)", r"comentarios?", r"calificaci(?:ón|on|ones)",
        r"valorar(?:nos)?",
    ),
    _alts(
        "レビュー", "評価", "フィードバック", "口コミ", "评价", "評價", "好评", "差评", "评论", "評論",
        "评分", "留评", "五星",
    ),
)
POSITIVE = words(
    _alts(
        "positive", "good", "great", "excellent", "glowing",
        "favou?rable", "nice", "perfect", "top", "best", r"(?:5|five)[\s-]?stars?", "5/5", r"positiv\w*",
        r"gut(?:e[nrs]?)?", r"sehr\s+gut\w*", r"ausgezeichnet\w*", r"toll\w*",
        r"(?:5|fünf)[\s-]?sterne\w*", r"positi(?:f|ve)s?", r"bon(?:ne)?s?", r"excellent(?:e)?s?",
        r"(?:5|cinq)\s+[ée]toiles", r"positiv[oaie]", r"buon[oaie]?", r"ottim[oaie]", r"eccellent[ei]",
        r"(?:5|cinque)\s+stelle", r"positiv[oa]s?", r"buen[oa]s?", r"excelentes?", r"(?:5|cinco)\s+estrellas",
        "satisfied", "happy", "zufrieden", r"satisfait(?:e)?s?", r"soddisfatt[oaie]", r"satisfech[oa]s?",
    ),
    _alts(
        "高評価", "良い評価", "好評価", "星\\s?5", "★\\s?5", "★★★★★", "5つ星", "五つ星", "満点", "好意的な",
        "満足",
        "好评", "五星", "5星", "满分", "正面评价", "五颗星", "满意",
    ),
    stop=r"good\s+(?:morning|afternoon|evening|day)|gut(?:e[nrs]?)?\s+tag",
)
REMOVAL = words(
    _alts(
        r"remov\w*", r"delet\w*", r"withdraw\w*", r"retract\w*", r"chang\w*", r"updat\w*", r"revis\w*",
        r"modif\w*", r"amend\w*", r"reconsider\w*", r"take\s+(?:it\s+)?(?:down|back)", r"entfern\w*",
        r"lösch\w*", r"zurück(?:zu)?(?:ziehen|nehmen)", r"(?:ab)?änder\w*", r"anpass\w*", r"überdenk\w*",
        r"korrigier\w*",
        r"supprim\w*", r"retir\w*", r"reconsid[ée]r\w*", r"mettre\s+à\s+jour", r"rimuov\w*",
        r"elimin\w*", r"cancell\w*", r"ritir\w*", r"cambi\w*", r"rived\w*", r"borr\w*",
        r"quit(?:ar|e|en|arla|arlo)",
        r"actualiz\w*",
    ),
    _alts(
        "削除", "取り消", "取消", "撤回", "変更", "修正", "書き換え", "見直", "删除", "刪除", "撤销",
        "修改", "更改", "追评", "改成", "改为",
    ),
)
INCENTIVE = words(
    _alts(
        r"refund\w*", r"reimburs\w*", "money", "cash", r"gifts?", "free", r"vouchers?",
        r"coupons?",
        r"discounts?", r"compensat\w*", r"rewards?", "bonus", r"in\s+(?:exchange|return)", r"[$€£]\s?\d+",
        r"\d+(?:[.,]\d+)?\s?(?:€|\$|£|euros?|dollars?|pounds?)",
        r"€\s?\d+",
        r"\w*erstatt\w*", "geld", r"geschenk\w*", "gratis", r"kostenlos\w*", r"gutschein\w*", r"rabatt\w*",
        r"entschädig\w*", r"belohn\w*", r"im\s+gegenzug", r"als\s+dankeschön", r"rembours\w*", "argent",
        r"cadeaux?", r"gratuit\w*", r"bon\s+d'achat", r"r[ée]duction", r"r[ée]compense\w*",
        r"en\s+(?:[ée]change|retour)",
        r"rimbors\w*", "soldi", "denaro", r"regal\w*", "buono", "sconto", r"ricompens\w*", r"in\s+cambio",
        r"reembols\w*", "dinero", "vale", "descuento", r"recompens\w*", r"a\s+cambio",
    ),
    _alts(
        "返金", "プレゼント", "無料", "ギフト券", "ギフトカード", "謝礼", "特典", "割引", "代わりに",
        "引き換え", "退款", "返现",
        "返現", "礼物", "禮物", "免费", "红包", "赠品", "补偿", "作为回报", "现金", "折扣", "返款",
    ),
    stop=r"feel\s+free",
)
REQUEST = words(
    _alts(
        "please", "kindly", r"give\s+us", r"gib(?:\s+uns)?", r"geben\s+sie\s+uns", r"(?:would|could|can)\s+you",
        r"we(?:'d|\s+would)\s+(?:love|appreciate|be\s+grateful)",
        r"leave\w*", "write", "give", "post", "bitte", r"(?:würden|könnten|können)\s+sie", r"hinterlass\w*",
        r"schreib\w*", r"geben\s+sie", "abgeben", r"wir\s+(?:würden\s+uns|freuen\s+uns)", r"merci\s+de",
        "veuillez", r"pourriez-vous", r"pouvez-vous", r"s'il\s+vous\s+pla[îi]t", r"laiss\w*", "donner",
        "[ée]crire", r"n'h[ée]sitez\s+pas", r"nous\s+serions\s+ravis", r"per\s+favore", r"la\s+preghiamo",
        "potrebbe", r"lasci\w*", "scrivere", r"ci\s+farebbe\s+piacere", r"saremmo\s+grati", r"por\s+favor",
        r"le\s+rogamos", r"podr[íi]a", r"dej\w*", "escribir", r"nos\s+encantar[íi]a",
        r"le\s+agradecer[íi]amos",
    ),
    _alts(
        "お願い", "ください", "下さい", "いただけ", "頂け", "いただきたく", "请", "請", "麻烦", "希望您",
        "帮忙", "给我们", "能否", "可否",
    ),
)
CONDITION = words(
    _alts(
        "if", "once", r"when\s+you", r"after\s+you", r"as\s+soon\s+as", r"and\s+(?:get|receive)",
        r"to\s+receive",
        "wenn", "falls", "sobald", "nachdem", "dafür", r"(?:erhalten|bekommen)\s+sie", r"bekomm(?:st|t)",
        "si", r"une\s+fois",
        r"d[èe]s\s+que", "contre", "se", r"una\s+volta", "appena", r"una\s+vez", r"en\s+cuanto",
    ),
    _alts("たら", "れば", "条件", "如果", "只要", "即可", "之后", "后即", "换取"),
)

# --- thank-you-only replies --------------------------------------------------------------------------

_TAIL = r"[^.,;:!?\n。！？、，]{0,60}"
THANKS = words(
    _alts(
        rf"(?:many\s+)?thank(?:s|\s+you)(?:\s+(?:so|very)\s+much|\s+a\s+lot)?(?:\s+again)?(?:\s+(?:for|from)\b{_TAIL})?",
        r"much\s+appreciated",
        rf"(?:vielen|herzlichen|besten|tausend)?\s*dank(?:e)?(?:\s+(?:schön|sehr))?(?:\s+(?:für|fuer)\b{_TAIL})?",
        rf"merci(?:\s+(?:beaucoup|bien))?(?:\s+(?:pour|de\s+(?:votre|vos|la|le|l'))\b{_TAIL})?",
        rf"grazie(?:\s+(?:mille|tante))?(?:\s+(?:per|di)\b{_TAIL})?",
        rf"(?:muchas\s+)?gracias(?:\s+(?:por|de)\b{_TAIL})?",
    ),
    r"[^。！？!\n]{0,40}(?:ありがとうございま(?:す|した)|ありがとう|感謝(?:いたし|申し上げ)ます)"
    r"|[^。！？!\n]{0,30}(?:谢谢|感谢|感謝|多谢)[^。！？!\n]{0,30}",
)
GREETING = words(
    _alts(
        "hi", "hello", "hey", r"dear\s*[^,\n]{0,30}", r"good\s+(?:morning|afternoon|evening)", "hallo",
        r"guten\s+tag",
        r"sehr\s+geehrte[rs]?\s*[^,\n]{0,30}", r"liebe[rs]?\s*[^,\n]{0,30}", "bonjour", "bonsoir",
        r"ch[èe]re?",
        "madame", "monsieur", "ciao", "buongiorno", "buonasera", r"gentile\s*[^,\n]{0,30}", "salve", "hola",
        r"buenos\s+d[íi]as", r"buenas\s+tardes", r"estimad[oa]\s*[^,\n]{0,30}",
    ),
    "こんにちは|お世話になっております|[^\\s,，、]{0,10}様|您好|你好|亲爱的[^，,\\s]{0,10}",
)
CLOSING = words(
    _alts(
        r"(?:best|kind|warm|warmest)\s+(?:regards|wishes)", "regards", "sincerely", "cheers",
        r"mit\s+freundlichen\s+grüßen", r"(?:viele|beste|freundliche|liebe)\s+grüße",
        r"(?:bien\s+)?cordialement",
        r"bien\s+à\s+vous", r"(?:cordiali|distinti)\s+saluti", "saluti", r"un\s+saluto", "atentamente",
        r"saludos(?:\s+cordiales)?", r"un\s+saludo",
    ),
    "よろしくお願い(?:いた|致)?(?:します|申し上げます)|敬具|此致敬礼|此致|敬礼|祝您(?:生活)?愉快|祝好",
)
# fmt: on
