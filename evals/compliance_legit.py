# ruff: noqa: E501 - reply templates read best one per line
"""The legitimate set: replies a careful seller sends every day, dense with what looks like contact data
and is not — order ids, tracking numbers of many carriers, ASINs, SKUs, model and serial numbers, EANs,
prices in every locale format, dates, times, addresses with postcodes, and Amazon's own pages.

The gate must block none of them. Rows are built from per-language reply templates filled with
rotating values (a fixed seed), so every row mixes several number formats.

    python -m evals.compliance_legit      # rewrites evals/datasets/compliance_legit.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

TARGET = Path(__file__).resolve().parent / "datasets" / "compliance_legit.jsonl"
PER_LANGUAGE = 80
SEED = 11

VALUES: dict[str, list[str]] = {
    "order": ["302-1234567-7654321", "028-9876543-1122334", "171-5550199-8842001", "305-0000111-2223334",
              "249-7418529-6301478", "503-3141592-6535897", "114-2718281-8284590", "406-1357913-5791357"],
    "tracking": ["1Z999AA10123456784", "1Z 12E 4A5 03 9876 5432", "JJD000390007828342", "00340434161234567890",
                 "AB123456789GB", "RR123456785CN", "1234-5678-9012", "SF1234567890123", "PQ4F6P0703673180108020B",
                 "9400 1000 0000 0000 0000 00", "EJ958083578JP", "H1002345678901234567", "CZ123456789DE"],
    "carrier": ["DHL", "UPS", "Hermes", "DPD", "GLS", "Royal Mail", "Colissimo", "BRT", "Correos", "Yamato",
                "USPS", "Japan Post", "SF Express"],
    "asin": ["B08N5WRWNW", "B07XJ8C8F5", "B0C1H26C46", "3453317831", "B09G9FPHY6", "B0BSHF7WHW"],
    "sku": ["SKU-2024-11-0815", "GW-X200-BLK", "TH24-4711-RED", "AC-500/EU", "LMP-88-2210", "KB-1029-DE"],
    "model": ["X200", "TK-4012", "HX-3100 Pro", "A1-2024", "RX 580", "MK2-1150"],
    "serial": ["SN 2023-0815-4471", "SN: 4F3A-9921-0CD2", "S/N 12004567", "SN0012457812"],
    "ean": ["4006381333931", "EAN 4012345678901", "0885909950805"],
    "price_en": ["$24.99", "$1,299.00", "£15.50", "USD 49.95", "$ 7.50"],
    "price_de": ["12,99 €", "1.299,00 €", "€ 5,49", "EUR 89,90", "1 299,00 €"],
    "price_fr": ["12,99 €", "1 299,00 €", "5,49 euros", "89,90 EUR"],
    "price_it": ["12,99 €", "1.299,00 €", "€ 5,49", "89,90 euro"],
    "price_es": ["12,99 €", "1.299,00 €", "5,49 euros", "89,90 EUR"],
    "price_ja": ["¥1,980", "4.980円", "12,800円", "￥3,300"],
    "price_zh": ["299元", "¥1,299", "1299.00元", "RMB 88"],
    "date_en": ["03/12/2024", "12/24/2024", "2024-03-12", "March 12, 2024"],
    "date_eu": ["12.03.2024", "24.12.2024", "03/12/2024", "2024-03-12", "1.4.2025"],
    "date_ja": ["2024年3月12日", "2024/03/12", "3月12日", "2024-03-12"],
    "time": ["14:30", "9:00-17:00", "08:15", "18:45"],
    "address_en": ["1600 Amphitheatre Pkwy, Mountain View, CA 94043", "221B Baker Street, London NW1 6XE",
                   "350 5th Ave, New York, NY 10118"],
    "address_de": ["Musterstraße 12, 10115 Berlin", "Hauptstr. 5, 80331 München", "Am Markt 1, 50667 Köln"],
    "address_fr": ["12 rue de la Paix, 75002 Paris", "5 avenue Foch, 69006 Lyon"],
    "address_it": ["Via Roma 10, 00184 Roma", "Corso Buenos Aires 33, 20124 Milano"],
    "address_es": ["Calle Mayor 5, 28013 Madrid", "Avenida Diagonal 640, 08017 Barcelona"],
    "address_ja": ["〒150-0001 東京都渋谷区神宮前1-2-3", "〒530-0001 大阪府大阪市北区梅田2-4-9"],
    "address_zh": ["北京市朝阳区建国路88号 100022", "上海市浦东新区世纪大道100号 200120"],
    "size": ["30 x 20 x 10 cm", "2,5 kg", "1.5 m", "12 V / 2 A", "500 ml", "45 × 30 cm"],
    "amazon_en": ["amazon.com/returns", "https://www.amazon.co.uk/gp/css/order-history", "amazon.com"],
    "amazon_de": ["amazon.de/returns", "https://www.amazon.de/gp/css/order-history", "www.amazon.de"],
    "amazon_fr": ["amazon.fr/retours", "https://www.amazon.fr/gp/css/order-history"],
    "amazon_it": ["amazon.it/resi", "https://www.amazon.it/gp/css/order-history"],
    "amazon_es": ["amazon.es/devoluciones", "https://www.amazon.es/gp/css/order-history"],
    "amazon_ja": ["amazon.co.jp", "https://www.amazon.co.jp/gp/css/order-history"],
    "amazon_zh": ["amazon.cn", "https://www.amazon.cn/gp/css/order-history"],
    "qty": ["2", "3", "1", "12", "24"],
    "days": ["2", "3", "3-5", "5-7", "10"],
    "isbn": ["ISBN 978-3-16-148410-0", "ISBN 0-306-40615-2"],
    "version": ["firmware 2.1.0.4", "version 1.4.2", "v3.0.1"],
    "percent": ["100 %", "50%", "99.9 %"],
}  # fmt: skip

TEMPLATES: dict[str, list[str]] = {
    "en": [
        "Hello, thank you for your message about order {order}. Your parcel left our warehouse on {date_en} with {carrier}; the tracking number is {tracking}. Delivery usually takes {days} business days.",
        "Hi, the item {asin} (SKU {sku}) from order {order} is back in stock. The price is still {price_en}. You can reorder it from Your Orders on {amazon_en}.",
        "Dear customer, we are sorry the {model} arrived damaged. Please start a return under Your Orders > Return or replace items on {amazon_en}; the refund of {price_en} follows once it arrives.",
        "Hello, the package for order {order} was delivered on {date_en} at {time} to {address_en}. If you cannot find it, please check with your neighbours first.",
        "Hi, the serial number on your invoice is {serial} and the model is {model}. The warranty runs until {date_en}.",
        "Hello, the box measures {size} and weighs {size}. We shipped {qty} units with {carrier}, tracking {tracking}.",
        "Dear customer, the replacement for order {order} ships today. The new tracking number is {tracking} and it should arrive within {days} days.",
        "Hello, your book ({isbn}, ASIN {asin}) was sent on {date_en}. Order {order}, total {price_en}.",
        "Hi, please update the device to {version} via its settings menu; the model {model} then supports the new charger. Your order {order} includes {qty} cables.",
        "Hello, we issued a refund of {price_en} for order {order} on {date_en}. It appears on your statement within {days} business days.",
        "Dear customer, the EAN of the item is {ean} and the manufacturer part number is {sku}. It fits the {model}.",
        "Hi, {carrier} reports the parcel {tracking} at the depot since {date_en}, {time}. We have opened an investigation for order {order}.",
    ],
    "de": [
        "Hallo, vielen Dank für Ihre Nachricht zur Bestellung {order}. Ihr Paket wurde am {date_eu} mit {carrier} verschickt, die Sendungsnummer lautet {tracking}. Die Zustellung dauert in der Regel {days} Werktage.",
        "Guten Tag, der Artikel {asin} (Artikelnummer {sku}) aus der Bestellung {order} ist wieder verfügbar. Der Preis beträgt weiterhin {price_de}.",
        "Sehr geehrte Kundin, sehr geehrter Kunde, es tut uns leid, dass der {model} beschädigt ankam. Bitte starten Sie die Rücksendung unter Meine Bestellungen auf {amazon_de}; die Erstattung von {price_de} folgt nach Eingang.",
        "Hallo, das Paket zur Bestellung {order} wurde am {date_eu} um {time} Uhr an {address_de} zugestellt. Bitte fragen Sie zuerst bei Ihren Nachbarn nach.",
        "Guten Tag, die Seriennummer auf Ihrer Rechnung ist {serial}, das Modell {model}. Die Garantie läuft bis zum {date_eu}.",
        "Hallo, der Karton misst {size} und wiegt ca. {size}. Wir haben {qty} Stück mit {carrier} verschickt, Sendungsnummer {tracking}.",
        "Guten Tag, der Ersatz für die Bestellung {order} geht heute raus. Die neue Sendungsnummer lautet {tracking}, die Lieferung dauert ca. {days} Tage.",
        "Hallo, wir haben am {date_eu} {price_de} für die Bestellung {order} erstattet. Der Betrag erscheint innerhalb von {days} Werktagen auf Ihrem Konto.",
        "Guten Tag, die EAN des Artikels ist {ean}, die Teilenummer {sku}. Er passt z. B. zum {model}.",
        "Hallo, laut {carrier} liegt das Paket {tracking} seit dem {date_eu}, {time} Uhr im Depot. Wir haben einen Nachforschungsauftrag zur Bestellung {order} gestellt.",
        "Guten Tag, bitte aktualisieren Sie das Gerät auf {version} über das Einstellungsmenü. Ihre Bestellung {order} enthält {qty} Kabel.",
    ],
    "fr": [
        "Bonjour, merci pour votre message concernant la commande {order}. Votre colis est parti le {date_eu} avec {carrier}, numéro de suivi {tracking}. La livraison prend en général {days} jours ouvrés.",
        "Bonjour, l'article {asin} (référence {sku}) de la commande {order} est de nouveau disponible au prix de {price_fr}.",
        "Madame, Monsieur, nous sommes désolés que le {model} soit arrivé endommagé. Merci de lancer le retour depuis Vos commandes sur {amazon_fr} ; le remboursement de {price_fr} suivra.",
        "Bonjour, le colis de la commande {order} a été livré le {date_eu} à {time} au {address_fr}.",
        "Bonjour, le numéro de série sur votre facture est {serial} et le modèle {model}. La garantie court jusqu'au {date_eu}.",
        "Bonjour, le carton mesure {size} et pèse {size}. Nous avons expédié {qty} unités avec {carrier}, suivi {tracking}.",
        "Bonjour, le remplacement pour la commande {order} part aujourd'hui. Le nouveau numéro de suivi est {tracking}.",
        "Bonjour, nous avons remboursé {price_fr} pour la commande {order} le {date_eu}. Le montant apparaîtra sous {days} jours ouvrés.",
        "Bonjour, le code EAN de l'article est {ean} et la référence fabricant {sku}. Il est compatible avec le {model}.",
        "Bonjour, selon {carrier}, le colis {tracking} est au dépôt depuis le {date_eu} à {time}. Nous avons ouvert une enquête pour la commande {order}.",
    ],
    "it": [
        "Buongiorno, grazie per il messaggio sull'ordine {order}. Il pacco è partito il {date_eu} con {carrier}, numero di tracking {tracking}. La consegna richiede di solito {days} giorni lavorativi.",
        "Buongiorno, l'articolo {asin} (codice {sku}) dell'ordine {order} è di nuovo disponibile al prezzo di {price_it}.",
        "Gentile cliente, ci dispiace che il {model} sia arrivato danneggiato. Avvii il reso da I miei ordini su {amazon_it}; il rimborso di {price_it} seguirà.",
        "Buongiorno, il pacco dell'ordine {order} è stato consegnato il {date_eu} alle {time} in {address_it}.",
        "Buongiorno, il numero di serie in fattura è {serial} e il modello {model}. La garanzia è valida fino al {date_eu}.",
        "Buongiorno, la scatola misura {size} e pesa {size}. Abbiamo spedito {qty} pezzi con {carrier}, tracking {tracking}.",
        "Buongiorno, la sostituzione per l'ordine {order} parte oggi. Il nuovo numero di spedizione è {tracking}.",
        "Buongiorno, abbiamo rimborsato {price_it} per l'ordine {order} il {date_eu}. L'importo sarà visibile entro {days} giorni lavorativi.",
        "Buongiorno, il codice EAN dell'articolo è {ean} e il codice produttore {sku}. È compatibile con il {model}.",
        "Buongiorno, secondo {carrier} il pacco {tracking} è in deposito dal {date_eu} alle {time}. Abbiamo aperto una verifica per l'ordine {order}.",
    ],
    "es": [
        "Hola, gracias por su mensaje sobre el pedido {order}. Su paquete salió el {date_eu} con {carrier}, número de seguimiento {tracking}. La entrega suele tardar {days} días laborables.",
        "Hola, el artículo {asin} (referencia {sku}) del pedido {order} vuelve a estar disponible por {price_es}.",
        "Estimado cliente, lamentamos que el {model} llegara dañado. Inicie la devolución en Mis pedidos en {amazon_es}; el reembolso de {price_es} llegará después.",
        "Hola, el paquete del pedido {order} se entregó el {date_eu} a las {time} en {address_es}.",
        "Hola, el número de serie de su factura es {serial} y el modelo {model}. La garantía es válida hasta el {date_eu}.",
        "Hola, la caja mide {size} y pesa {size}. Enviamos {qty} unidades con {carrier}, seguimiento {tracking}.",
        "Hola, el reemplazo del pedido {order} sale hoy. El nuevo número de envío es {tracking}.",
        "Hola, hemos reembolsado {price_es} del pedido {order} el {date_eu}. El importe aparecerá en {days} días laborables.",
        "Hola, el código EAN del artículo es {ean} y la referencia del fabricante {sku}. Es compatible con el {model}.",
        "Hola, según {carrier} el paquete {tracking} está en el almacén desde el {date_eu} a las {time}. Hemos abierto una investigación del pedido {order}.",
    ],
    "ja": [
        "お問い合わせありがとうございます。ご注文番号{order}の商品は{date_ja}に{carrier}で発送いたしました。追跡番号は{tracking}です。お届けまで{days}日ほどかかります。",
        "ご連絡ありがとうございます。ASIN {asin}（品番{sku}）は再入荷いたしました。価格は{price_ja}です。",
        "この度は{model}が破損した状態で届き、大変申し訳ございません。{amazon_ja}の注文履歴から返品手続きをお願いいたします。{price_ja}を返金いたします。",
        "ご注文{order}の荷物は{date_ja} {time}に{address_ja}へ配達済みとなっております。",
        "請求書記載のシリアル番号は{serial}、型番は{model}です。保証期間は{date_ja}までです。",
        "箱のサイズは{size}、重さは{size}です。{carrier}で{qty}個発送いたしました。お問い合わせ番号は{tracking}です。",
        "ご注文{order}の交換品を本日発送いたします。新しい追跡番号は{tracking}です。",
        "ご注文{order}について、{date_ja}に{price_ja}を返金いたしました。{days}営業日ほどで反映されます。",
        "商品のJANコードは{ean}、メーカー品番は{sku}です。{model}に対応しております。",
        "{carrier}によると、荷物{tracking}は{date_ja} {time}から営業所に保管されています。ご注文{order}について調査を依頼いたしました。",
    ],
    "zh": [
        "您好，感谢您关于订单{order}的留言。包裹已于{date_ja}通过{carrier}发出，运单号为{tracking}，预计{days}个工作日内送达。",
        "您好，商品{asin}（货号{sku}）已补货，价格仍为{price_zh}。",
        "非常抱歉{model}到货时有损坏。请在{amazon_zh}的我的订单中申请退货，我们会退还{price_zh}。",
        "您好，订单{order}的包裹已于{date_ja} {time}送达{address_zh}。",
        "您好，发票上的序列号为{serial}，型号为{model}，保修期至{date_ja}。",
        "您好，包装尺寸为{size}，重量为{size}。我们已通过{carrier}发出{qty}件，单号{tracking}。",
        "您好，订单{order}的换货今天发出，新的运单号为{tracking}。",
        "您好，我们已于{date_ja}为订单{order}退款{price_zh}，预计{days}个工作日到账。",
        "您好，商品条码为{ean}，厂家型号为{sku}，适用于{model}。",
        "您好，据{carrier}显示，包裹{tracking}自{date_ja} {time}起在网点存放。我们已为订单{order}提交查询。",
    ],
}


def rows(per_language: int = PER_LANGUAGE, seed: int = SEED) -> list[dict[str, Any]]:
    """`per_language` replies per language, each template filled with values drawn by a fixed seed."""
    chooser = random.Random(seed)
    found: list[dict[str, Any]] = []
    for language, templates in TEMPLATES.items():
        for number in range(per_language):
            template = templates[number % len(templates)]
            values = {key: chooser.choice(options) for key, options in VALUES.items()}
            found.append(
                {
                    "id": f"ok-legit-{language}-{number + 1:03d}",
                    "text": template.format(**values),
                    "language": language,
                    "blocked": False,
                    "rules": [],
                }
            )
    return found


def write(path: Path = TARGET) -> int:
    found = rows()
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in found), encoding="utf-8")
    return len(found)


if __name__ == "__main__":
    print(f"{TARGET}: {write()} rows")
