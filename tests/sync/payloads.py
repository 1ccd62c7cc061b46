"""Raw Wildberries items shaped as docs/wb-api.md describes them."""

from typing import Any

from app.connectors.wildberries import mapping
from app.sync import normalize
from app.sync.normalize import SellerContext


def feedback(i: int, **over: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"fb{i:018d}",
        "text": "Размер маломерит",
        "pros": "Цвет",
        "cons": "",
        "productValuation": 2,
        "createdDate": f"2026-03-{1 + i % 28:02d}T10:20:48+03:00",
        "state": "none",
        "answer": None,
        "productDetails": {
            "nmId": 1000 + i % 7,
            "imtId": 1,
            "productName": "Кроссовки беговые",
            "supplierArticle": "SKU-1",
            "supplierName": "ООО Ромашка",
            "brandName": "Runner",
            "size": "42",
        },
        "photoLinks": None,
        "video": None,
        "wasViewed": False,
        "userName": "Анна",
        "orderStatus": "buyout",
        "matchingSize": "smaller",
        "bables": None,
    }
    return item | over


def question(i: int, **over: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"q{i:019d}",
        "text": "Подойдет ли к iPhone 15?",
        "createdDate": "2026-03-02T11:18:08.769513469Z",
        "state": "suppliersPortalSynch",
        "answer": None,
        "productDetails": {"nmId": 2000, "imtId": 2, "productName": "Чехол", "brandName": "X"},
        "wasViewed": False,
        "isWarned": False,
    }
    return item | over


def event(
    chat: str, n: int, ts_ms: int, sender: str = "client", text: str = "Где мой заказ?"
) -> dict[str, Any]:
    return {
        "chatID": chat,
        "eventID": f"{chat}-e{n}",
        "eventType": "message",
        "isNewChat": n == 0,
        "message": {"text": text, "attachments": {"goodCard": {"nmID": 3000, "rid": "srid-1"}}},
        "source": "rusite" if sender == "client" else "seller-public-api",
        "addTimestamp": ts_ms,
        "addTime": "2026-03-02T11:18:08Z",
        "replySign": "sign-" + chat if n == 0 else None,
        "sender": sender,
        "clientName": "Пётр",
    }


def review_row(raw: Any, ctx: SellerContext) -> dict[str, Any]:
    """A raw review as the sync stores it: mapped by the connector, classified by the sync."""
    return normalize.classified(mapping.feedback_item(raw, ctx.seller_id), ctx)


def question_row(raw: Any, ctx: SellerContext) -> dict[str, Any]:
    return normalize.classified(mapping.question_item(raw, ctx.seller_id), ctx)
