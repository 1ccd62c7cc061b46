import pytest

from app.dispatch import quality

DRAFT = "Здравствуйте! Спасибо за отзыв. Модель маломерит, советуем брать на размер больше."


@pytest.mark.parametrize(
    ("sent", "draft", "expected"),
    [
        (DRAFT, DRAFT, "draft_accepted"),
        ("  " + DRAFT.replace(" ", "  ") + "\n", DRAFT, "draft_accepted"),  # spacing only
        (DRAFT.upper(), DRAFT, "draft_accepted"),
        (DRAFT.replace("советуем", "рекомендуем"), DRAFT, "draft_edited"),
        (DRAFT + " Хорошего дня!", DRAFT, "draft_edited"),
        ("Спасибо, ждём вас снова!", DRAFT, "reply_manual"),
        (DRAFT, None, "reply_manual"),
        (DRAFT, "", "reply_manual"),
    ],
    ids=["same", "spacing", "case", "word", "appended", "unrelated", "no-draft", "empty-draft"],
)
def test_classify(sent: str, draft: str | None, expected: str) -> None:
    assert quality.classify(sent, draft) == expected


def test_same_text_ignores_spacing_and_case_but_not_words() -> None:
    assert quality.same_text(" Спасибо  за отзыв ", "спасибо за отзыв")
    assert not quality.same_text("Спасибо за отзыв!", "Спасибо за отзыв")
    assert not quality.same_text(None, "Спасибо")
