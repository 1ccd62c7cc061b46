"""Inbox API benchmark (the inbox issue): one seller with 1,000,000 interactions in Postgres, the
API as a real server (one uvicorn process), 8 concurrent clients.

    .venv/bin/python -m bench.inbox_bench [--scale 1.0] [--requests 1000] [--concurrency 8]

1. Load: 1,000,000 interactions for the big seller (≈70 % reviews, 25 % questions, 5 % chats;
   2,000 products with a skewed share; ≈15 % open with SLA due around now; two years of history;
   Russian texts composed from a few hundred phrases), 50,000 for a second seller (interleaved,
   so tenancy filters matter), chat messages for every chat, ≈100,000 link candidates; set-based
   SQL (`INSERT … SELECT … FROM generate_series`), then `VACUUM ANALYZE`.
2. `python -m uvicorn --factory app.main:asgi` on a free port (one process, ENV=production with
   fixed secrets, LOG_LEVEL=WARNING); the operator logs in through `POST /api/v1/auth/login`.
3. Per scenario, ≥ 1,000 requests (after a warm-up) from 8 concurrent aiohttp clients: client-side
   p50/p95/p99, throughput, non-200s; list first page (default sort, status=open, newest), list
   at a deep cursor (200 pages), search first page and deep page, card, timeline. Then 200
   sequential requests (concurrency 1) and the API's and Postgres' CPU per request. Rows without
   a target for reading the others: /healthz and /auth/me (what any request costs), and search
   sorted newest-first (an alternative to ranking).
4. `EXPLAIN (ANALYZE, BUFFERS)` of the list statements exactly as the API sends them (captured
   from the driver while the app serves the request in-process).
5. Where the time goes: each scenario served in-process under cProfile (time per package, the
   app's functions with file:line) and its SQL replayed alone on the driver.

Targets (p95, concurrency 8): list ≤ 30 ms, card ≤ 40 ms, search ≤ 60 ms; timeline is reported
without one. A missed target prints MISSED, never adjusted. Postgres/Redis are BENCH_DATABASE_URL /
BENCH_REDIS_URL when set, else embedded ones under `.data/bench/inbox/`; the database
`sellerdesk_bench_inbox` is dropped and created, the Redis database flushed.
"""

import asyncio
import contextlib
import cProfile
import functools
import gc
import inspect
import os
import pstats
import re
import statistics
import sys
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import fastapi.routing as fastapi_routing
import greenlet  # type: ignore[import-untyped]
import httpx
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import event

import app.models  # noqa: F401 - every table in the metadata, or foreign keys cannot resolve
from app.auth import service as auth_service
from app.core.config import Settings
from app.core.db import create_engine, create_sessionmaker, server_settings, transaction
from app.main import create_app
from app.sellers import service as sellers_service
from bench.report import (
    Latencies,
    LoadClient,
    arg_parser,
    drive,
    nearest_rank,
    run_main,
    scale_note,
)
from bench.stack import (
    DATA,
    ROOT,
    ApiServer,
    BenchError,
    Services,
    api_env,
    flush_redis,
    login,
    migrate,
    plain_url,
    process_cpu_seconds,
    recreate_database,
    say,
    start_services,
    tree_cpu_seconds,
)

DATABASE = "sellerdesk_bench_inbox"
INBOX_DATA = DATA / "inbox"  # its own embedded servers: never stops a running sync benchmark's
API = "/api/v1"
EMAIL = "bench-operator@example.com"
PASSWORD = "bench-only-password"  # noqa: S105 - a throwaway database's operator
SECRETS_KEY = "sellerdesk-bench-only-secrets-key"
JWT_SECRET = "sellerdesk-bench-only-jwt-secret"  # noqa: S105 - fixed, so the token is reproducible

# Targets (the words; never adjusted here): p95 in ms at concurrency 8.
TARGET_LIST_MS = 30.0
TARGET_CARD_MS = 40.0
TARGET_SEARCH_MS = 60.0

# Data (at --scale 1).
BIG_ROWS = 1_000_000
SMALL_ROWS = 50_000
PRODUCTS = 2_000
PRODUCT_SKEW = 2.5  # product index = floor(PRODUCTS * u^2.5): the top product has ≈5 % of rows
CUSTOMERS_PER_ROW = 0.06  # customer ids drawn from 60,000 per million rows (≈4 rows each)
LINK_ROWS = 100_000
PAGE = 50
PG_SETTINGS = (
    "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost", "jit",
    "max_parallel_workers_per_gather", "max_connections",
)  # fmt: skip

# Timeouts (s): every wait ends.
REQUEST_TIMEOUT = 30.0
SCENARIO_TIMEOUT = 150.0  # per scenario: warm-up + measured requests at concurrency 8
SEQUENTIAL_TIMEOUT = 30.0  # per scenario: the requests at concurrency 1
GC_RUN_REQUESTS = 800
GC_RUN_TIMEOUT = 60.0
PROFILE_TIMEOUT = 12.0  # per scenario and pass of the in-process analysis
LOAD_STATEMENT_TIMEOUT = 900.0
WALK_TIMEOUT = 240.0


# --- the corpus --------------------------------------------------------------------------------
# Phrases as buyers and sellers write them on Wildberries. A text is one phrase of its kind's pool,
# sometimes a second one (same pool or a neutral filler), rarely an alarming one (→ urgent).


def _items(joined: str) -> list[str]:
    return joined.split(", ")


POOLS: dict[str, list[str]] = {
    "praise": [
        "Отличное качество, всё понравилось.",
        "Товар соответствует описанию, рекомендую.",
        "Очень довольна покупкой, спасибо продавцу!",
        "Ткань приятная к телу, швы ровные.",
        "Хорошее качество за свои деньги.",
        "Всё супер, буду заказывать ещё.",
        "Покупкой довольна, выглядит дороже своей цены.",
        "Классная вещь, ношу каждый день.",
        "Муж доволен, подарок удался.",
        "Качество отличное, нитки нигде не торчат.",
        "Смотрится стильно, получила много комплиментов.",
        "Материал плотный, не просвечивает.",
        "Упаковано аккуратно, всё целое.",
        "Лучшее, что покупала на WB за последнее время.",
        "Уже второй раз заказываю, качество не подводит.",
        "Работает отлично, заряд держит долго.",
        "Мягкий, тёплый, очень уютный.",
        "Продавцу спасибо, всё как в описании.",
        "Брала на подарок, всем понравилось.",
        "Соотношение цены и качества отличное.",
        "Очень красиво, фото не передают.",
        "Рекомендую, стоит своих денег.",
    ],
    "size_pos": [
        "Размер соответствует, села идеально.",
        "Размер в размер, брала свой обычный M.",
        "По размерной сетке всё совпало, сидит отлично.",
        "Размер подошёл, длина как раз на мой рост 168.",
        "Взяла свой размер 44, сидит по фигуре.",
        "Соответствует размеру, не маломерит и не большемерит.",
        "Размеры совпадают с таблицей, спасибо.",
        "Сидит хорошо, по размеру подошло идеально.",
        "На рост 180 размер L в самый раз.",
        "Посадка удобная, размер стандартный.",
        "Ребёнку размер подошёл, с небольшим запасом.",
        "Обхват талии совпал с таблицей размеров.",
    ],
    "size_neg": [
        "Маломерит на размер, берите на размер больше.",
        "Очень маломерит, в плечах узко.",
        "Размер не соответствует заявленному, пришлось вернуть.",
        "Большемерит, размер S как M.",
        "Маломерит, рукава короткие.",
        "Не подошёл размер, по длине очень коротко.",
        "Размерная сетка не совпадает, всё тесное.",
        "Маломерят на два размера, будьте внимательны.",
        "Размер больше заявленного, висит мешком.",
        "Взяла свой размер, а он мал в груди.",
        "Жмёт в талии, размер маленький.",
        "Длина брюк меньше, чем в таблице размеров.",
        "Размер на бирке не соответствует реальному.",
        "Обувь маломерит, жмёт в подъёме.",
        "Заказывала 46, пришёл по факту 42 размер.",
        "С размером беда, пришлось отдать сестре.",
    ],
    "defect": [
        "Пришёл брак: дырка на рукаве.",
        "Брак, шов разошёлся после первой стирки.",
        "Сломалась через неделю использования.",
        "Брак, молния не застёгивается.",
        "Пятно на ткани, видно сразу брак.",
        "Сильный химический запах, не выветривается.",
        "Краска облезла после первой стирки.",
        "Перестал работать через три дня.",
        "Трещина на корпусе, упаковка целая, значит заводской брак.",
        "Не включается, явный брак.",
        "Нитки торчат, шов кривой, брак.",
        "Полиняла при первой стирке, всё бельё окрасилось.",
        "Подошва отклеилась через неделю.",
        "Брак: не хватает пуговицы.",
        "Линяет и катышки после первой носки.",
        "Прислали бракованный товар, очень расстроена.",
    ],
    "quality_neg": [
        "Качество так себе, ткань очень тонкая.",
        "За такую цену качество могло быть лучше.",
        "Качество ужасное, выглядит дёшево.",
        "Ткань синтетическая, не дышит.",
        "Качество пошива среднее.",
        "Материал не соответствует описанию, не хлопок.",
        "Качество хуже, чем в прошлый раз.",
        "После стирки села и потеряла вид.",
        "Качество не соответствует цене.",
        "Неровные швы, качество на троечку.",
        "Пахнет резиной, качество сомнительное.",
    ],
    "color_neg": [
        "Цвет не соответствует фото, в жизни темнее.",
        "Цвет тусклее, чем на картинке.",
        "Заказывала бежевый, пришёл серый цвет.",
        "Цвет совсем другой, не как на фото.",
        "Оттенок отличается от заявленного.",
        "На фото цвет ярче, в реальности блёклый.",
        "Цвет розовый, а не красный, как в описании.",
        "Белый цвет просвечивает.",
    ],
    "color_pos": [
        "Цвет как на фото, очень красивый.",
        "Цвет насыщенный, не линяет.",
        "Цвет соответствует, оттенок приятный.",
        "Чёрный цвет глубокий, не выцвел после стирки.",
        "Цвет даже лучше, чем на картинке.",
    ],
    "delivery_neg": [
        "Доставка задержалась на неделю.",
        "Долго ждала, доставка заняла две недели.",
        "Упаковка была порвана при доставке.",
        "Курьер опоздал, доставка ужасная.",
        "Товар пришёл помятый после доставки.",
        "Срок доставки сорвали, заказ пришёл позже обещанного.",
        "Доставка в пункт выдачи шла 10 дней.",
        "Коробка пришла мокрая и мятая.",
        "Пришёл не тот товар, доставка перепутала заказ.",
        "Отправили не в тот пункт выдачи.",
    ],
    "delivery_pos": [
        "Доставка быстрая, забрала в пункте выдачи на следующий день.",
        "Привезли за два дня, упаковка целая.",
        "Доставка быстрая, всё пришло в целости.",
        "Заказ пришёл раньше срока.",
        "Быстрая доставка и хорошая упаковка.",
        "Курьер привёз вовремя, спасибо.",
    ],
    "return": [
        "Оформила возврат, жду деньги.",
        "Верните деньги, товар не соответствует описанию.",
        "Сделала возврат, деньги до сих пор не вернули.",
        "Пришлось вернуть, не подошло.",
        "Хочу обменять на другой размер, но обмена нет.",
        "Возврат не принимают, пишу отзыв.",
        "Вернула товар, жду возмещения уже две недели.",
        "Отказалась при получении, возврат оформлен.",
        "Возврат денег до сих пор не получила.",
        "Возврат денег обещали за 10 дней, прошёл месяц.",
    ],
    "spec_pos": [
        "Материал хороший, состав как в описании.",
        "Комплектация полная, инструкция на русском.",
        "Аккумулятор держит весь день.",
        "Подошёл к моей модели телефона идеально.",
        "Мощность заявленная, работает тихо.",
    ],
    "filler": [
        "Заказывала второй раз.",
        "Брала в подарок маме.",
        "Ношу уже месяц.",
        "Покупала по скидке.",
        "Долго выбирала между этим и другим вариантом.",
        "Брала дочке в школу.",
        "Фото прикладываю.",
        "Сравнила с прошлым заказом.",
        "Отзыв пишу спустя неделю носки.",
        "Покупала для себя.",
        "Заказ забирала в пункте выдачи.",
        "В целом нормально.",
        "Посмотрим, как покажет себя дальше.",
        "Спасибо.",
    ],
    "urgent": [
        "У ребёнка аллергия после использования!",
        "Зарядка искрит и дымит, это опасно!",
        "Это обман, напишу претензию в Роспотребнадзор.",
        "Получила ожог, товар опасен.",
        "Продавец мошенник, буду обращаться в суд.",
        "Ударило током при включении.",
    ],
    "q_size": [
        "Подскажите, на рост 170 какой размер взять?",
        "Маломерит или в размер?",
        "Какие замеры у размера M?",
        "Какая длина изделия у размера 46?",
        "На размер 48 какой брать, если обхват груди 100?",
        "Какой размер посоветуете на вес 65 кг?",
        "Размеры соответствуют российским?",
        "Какая ширина в плечах у размера L?",
        "Ребёнку 5 лет, какой размер заказать?",
        "Стопа 25 см, какой размер обуви брать?",
        "Большемерит? Обычно ношу S.",
        "Какой обхват талии у размера 44?",
    ],
    "q_spec": [
        "Из какого материала сделано?",
        "Какой состав ткани?",
        "Подойдёт ли к iPhone 15?",
        "Есть ли гарантия на товар?",
        "Какая мощность у модели?",
        "Какой разъём у зарядки, Type-C?",
        "Ёмкость аккумулятора реальная?",
        "Что входит в комплект?",
        "Есть ли инструкция на русском?",
        "Совместимо с Android?",
        "Какая плотность ткани?",
    ],
    "q_avail": [
        "Когда будет поступление размера S?",
        "Есть ли в наличии чёрный цвет?",
        "Сколько идёт доставка в Казань?",
        "Когда появится в наличии снова?",
        "Со склада в Коледино отправляете?",
        "Будет ли поступление до конца месяца?",
        "Можно доставку в пункт выдачи в Новосибирске?",
        "Почему нет в наличии размера 42?",
    ],
    "q_pre": [
        "Стоит ли брать для подарка?",
        "Можно ли стирать в машинке?",
        "Есть ли другие цвета?",
        "Подскажите, ткань сильно мнётся?",
        "Сколько весит?",
        "Какая страна производства?",
        "Будет ли скидка на этот товар?",
        "Есть ли подарочная упаковка?",
        "Можно ли гладить утюгом?",
        "Какие цвета есть в наличии?",
    ],
    "q_other": [
        "Здравствуйте!",
        "Спасибо за товар.",
        "Добрый день, хотела уточнить по заказу.",
        "Отличный магазин.",
    ],
    "c_return": [
        "Здравствуйте, хочу вернуть товар, как оформить возврат?",
        "Когда вернут деньги за заказ?",
        "Возврат одобрили, а деньги не пришли.",
        "Можно обменять на другой размер?",
        "Товар не подошёл, верните деньги, пожалуйста.",
        "Отказала в возврате, почему?",
    ],
    "c_defect": [
        "Пришёл товар с браком, что делать?",
        "Здравствуйте, товар сломался через неделю.",
        "В посылке брак, прикладываю фото.",
        "Не работает после первой зарядки.",
        "Пятно на ткани, это брак?",
        "Молния сломалась сразу, брак.",
    ],
    "c_delivery": [
        "Где мой заказ? Доставка задерживается.",
        "Когда отправите заказ?",
        "Заказ не пришёл в пункт выдачи.",
        "Курьер не привёз, что случилось?",
        "Срок доставки прошёл, заказа нет.",
        "Пришёл не тот цвет, перепутали заказ.",
    ],
    "c_size": [
        "Подскажите, какой размер выбрать на рост 165?",
        "Маломерит? Ношу 44.",
        "Какие замеры у размера M?",
        "Какой размер лучше взять ребёнку 7 лет?",
    ],
    "c_other": [
        "Здравствуйте!",
        "Спасибо за ответ.",
        "Добрый день, есть вопрос.",
        "Хорошо, спасибо.",
        "Жду ответа.",
    ],
    "pros": [
        "Мягкая ткань",
        "Хорошо сидит",
        "Красивый цвет",
        "Быстрая доставка",
        "Цена",
        "Качество",
        "Удобно",
        "Тёплая",
        "Лёгкий",
        "Всё",
    ],
    "cons": [
        "Маломерит",
        "Запах",
        "Тонкая ткань",
        "Нет",
        "Долгая доставка",
        "Брак шва",
        "Цвет не как на фото",
        "Размер не соответствует",
        "Дорого",
        "Катышки",
    ],
    "replies": [
        "Здравствуйте! Спасибо за отзыв, рады, что покупка понравилась.",
        "Благодарим за высокую оценку! Ждём вас снова.",
        "Здравствуйте! Приносим извинения за брак. Оформите возврат, деньги вернутся в срок.",
        "Спасибо за обратную связь! Рекомендуем сверяться с таблицей размеров в карточке.",
        "Здравствуйте! Модель маломерит, советуем брать на размер больше.",
        "Сожалеем о задержке доставки, сроки зависят от логистики маркетплейса.",
        "Здравствуйте! Состав указан в карточке товара: 95 % хлопок, 5 % эластан.",
        "Спасибо, что выбрали наш магазин!",
        "Здравствуйте! Поступление ожидается на следующей неделе.",
        "Извините за неудобства, передали информацию на производство.",
        "Здравствуйте! Да, подходит, совместимость указана в описании.",
        "Благодарим за отзыв! Уход: деликатная стирка при 30 градусах.",
    ],
    "names": _items(
        "Анна, Мария, Екатерина, Ольга, Елена, Наталья, Ирина, Светлана, Татьяна, Юлия, "
        "Дарья, Алина, Ксения, Виктория, Полина, Анастасия, Дмитрий, Алексей, Сергей, "
        "Андрей, Иван, Михаил, Артём, Никита, Владимир, Павел, Евгений, Максим, Роман, Олег, "
        "Галина, Людмила"
    ),
    "categories": _items(
        "Платье женское летнее, Футболка оверсайз хлопок, Джинсы мом с высокой посадкой, "
        "Кроссовки мужские беговые, Куртка демисезонная, Пижама женская, Худи унисекс, "
        "Брюки палаццо, Юбка плиссе миди, Свитер вязаный, Костюм спортивный, "
        "Носки набор 10 пар, Бюстгальтер без косточек, Ботинки зимние, Пальто шерстяное, "
        "Рубашка льняная, Шорты джинсовые, Сумка через плечо, Рюкзак городской, "
        "Наушники беспроводные, Зарядное устройство USB-C, Чехол для iPhone 15, "
        "Кабель Type-C 2 м, Внешний аккумулятор 20000 mAh, Фен для волос, "
        "Увлажнитель воздуха, Постельное бельё евро, Полотенце махровое, "
        "Сковорода антипригарная, Контейнеры для еды набор, Детский комбинезон, "
        "Мягкая игрушка, Крем для лица увлажняющий, Шампунь для волос, Коврик для йоги, "
        "Гантели 2 кг, Органайзер для косметики, Очки солнцезащитные, Часы наручные, "
        "Ремень кожаный"
    ),
    "colors": ["чёрный", "белый", "бежевый", "синий", "красный", "зелёный", "серый", "розовый"],
    "brands": ["Lumi", "Nordica", "Vesna", "UrbanFox", "Мастерица", "TechLine", "Domus", "Kinder"],
    "sizes": ["XS", "S", "M", "L", "XL", "42", "44", "46", "48", "50", "0"],
}
POOLS["chat_any"] = [p for k in ("c_return", "c_defect", "c_delivery", "c_size") for p in POOLS[k]]

# (channel, band) → (share, intent, pool). Bands: reviews by stars (low ≤ 2, mid 3, high ≥ 4).
KINDS: dict[tuple[str, str], list[tuple[float, str, str]]] = {
    ("review", "low"): [
        (0.33, "defect_quality", "defect"),
        (0.12, "defect_quality", "quality_neg"),
        (0.15, "return_refund", "return"),
        (0.20, "sizing_fit", "size_neg"),
        (0.12, "availability_delivery", "delivery_neg"),
        (0.08, "other", "color_neg"),
    ],
    ("review", "mid"): [
        (0.35, "sizing_fit", "size_neg"),
        (0.25, "defect_quality", "quality_neg"),
        (0.15, "other", "color_neg"),
        (0.10, "availability_delivery", "delivery_neg"),
        (0.15, "defect_quality", "defect"),
    ],
    ("review", "high"): [
        (0.55, "other", "praise"),
        (0.25, "sizing_fit", "size_pos"),
        (0.10, "availability_delivery", "delivery_pos"),
        (0.05, "other", "color_pos"),
        (0.05, "spec_compatibility", "spec_pos"),
    ],
    ("question", "all"): [
        (0.30, "sizing_fit", "q_size"),
        (0.25, "spec_compatibility", "q_spec"),
        (0.20, "availability_delivery", "q_avail"),
        (0.20, "pre_purchase", "q_pre"),
        (0.05, "other", "q_other"),
    ],
    ("chat", "all"): [
        (0.25, "return_refund", "c_return"),
        (0.20, "defect_quality", "c_defect"),
        (0.25, "availability_delivery", "c_delivery"),
        (0.15, "sizing_fit", "c_size"),
        (0.15, "other", "c_other"),
    ],
}

SCENARIO_KINDS = ("baseline", "list", "search", "compare", "card", "timeline")  # scenario kinds

# What the search scenarios ask (first page, default sort = relevance), in rotation.
SEARCHES = [
    "размер",
    "брак",
    "маломерит",
    "брак доставка",
    "доставка",
    "запах",
    "цвет не соответствует",
    "возврат денег",
    "качество",
    '"не подошёл размер"',
]


def _pick(list_sql: str, r: str) -> str:
    """SQL: one element of the text[] `list_sql`, chosen by the uniform random column `r`."""
    return f"{list_sql}[1 + floor({r} * cardinality({list_sql}))::int]"


# $1 big seller, $2 small seller, $3/$4 first/last n, $5 now, $6 operator (assignee),
# $7 every $7-th n is the small seller's, $8 products, $9 customers.
LOAD_INTERACTIONS = f"""
INSERT INTO interactions (
    seller_id, marketplace, channel, external_id, thread_key, customer_id, order_id,
    customer_name, nm_id, product_article, product_name, text, pros, cons, rating, photos_count,
    status, priority, priority_reason, intent, needs_response, is_read, assignee_id, sla_due_at,
    occurred_at, first_response_at, source, extra)
WITH r AS MATERIALIZED (
    SELECT n, CASE WHEN n % $7 = 0 THEN $2::bigint ELSE $1::bigint END AS seller_id,
           random() AS r_ch, random() AS r_st, random() AS r_rat, random() AS r_int,
           random() AS r_nm, random() AS r_t, random() AS r_a, random() AS r_b, random() AS r_c,
           random() AS r_d, random() AS r_e, random() AS r_f, random() AS r_g, random() AS r_h,
           random() AS r_i, random() AS r_j, random() AS r_k, random() AS r_l, random() AS r_m,
           random() AS r_n
    FROM generate_series($3::bigint, $4::bigint) AS n
), c AS (
    SELECT r.*,
           CASE WHEN r_ch < 0.70 THEN 'review' WHEN r_ch < 0.95 THEN 'question' ELSE 'chat' END
               AS channel,
           CASE WHEN r_rat < 0.11 THEN 1 WHEN r_rat < 0.17 THEN 2 WHEN r_rat < 0.25 THEN 3
                WHEN r_rat < 0.40 THEN 4 ELSE 5 END AS stars,
           floor($8::int * power(r_nm, {PRODUCT_SKEW}))::int AS product,
           r_d < 0.01 AS alarming
    FROM r
), s AS (
    SELECT c.*,
           CASE WHEN r_st < 0.15 THEN 'open'
                WHEN channel = 'review' AND r_st < 0.17 THEN 'pending_reply'
                WHEN channel = 'question' AND r_st < 0.18 THEN 'closed'
                ELSE 'responded' END AS status,
           CASE WHEN channel <> 'review' THEN 'all' WHEN stars <= 2 THEN 'low'
                WHEN stars = 3 THEN 'mid' ELSE 'high' END AS band,
           CASE channel WHEN 'review' THEN 1440 WHEN 'question' THEN 240 ELSE 60 END AS sla_min
    FROM c
), t AS (
    SELECT s.*, k.intent, p.phrases,
           CASE WHEN status = 'open'
                -- occurred up to one SLA + 12 h ago (never in the future): due 12 h ago …
                -- one SLA ahead
                THEN $5::timestamptz + sla_min * interval '1 minute'
                     - r_t * (sla_min * interval '1 minute' + interval '12 hours') END AS open_due
    FROM s
    JOIN bench_kind k ON k.channel = s.channel AND k.band = s.band
                     AND s.r_int >= k.lo AND s.r_int < k.hi
    JOIN bench_pool p ON p.name = k.pool
), u AS (
    SELECT t.*,
           coalesce(open_due - sla_min * interval '1 minute',
                    $5::timestamptz - interval '1 hour' - r_t * interval '730 days') AS occurred,
           CASE WHEN channel = 'chat' OR (channel = 'review' AND r_j < 0.25)
                THEN 'c' || floor(r_k * $9::int)::int END AS customer
    FROM t
), l AS (
    SELECT {", ".join(f"max(phrases) FILTER (WHERE name = '{k}') AS {k}" for k in POOLS)}
    FROM bench_pool
)
SELECT
    u.seller_id, 'wildberries', u.channel,
    CASE u.channel WHEN 'review' THEN 'fb-' WHEN 'question' THEN 'q-' ELSE 'chat-' END || u.n,
    CASE WHEN u.channel = 'chat' THEN 'chat-' || u.n END,
    u.customer,
    CASE WHEN u.customer IS NOT NULL AND (u.channel = 'chat' OR u.r_l < 0.5)
         THEN u.customer || '-' || floor(u.r_l * 4)::int END,
    CASE WHEN u.channel <> 'question' THEN {_pick("l.names", "u.r_i")} END,
    CASE WHEN u.seller_id = $1 THEN 100000000 ELSE 200000000 END + u.product * 37,
    CASE WHEN u.channel <> 'chat' THEN 'ART-' || (10000 + u.product) END,
    CASE WHEN u.channel <> 'chat'
         THEN l.categories[1 + u.product % cardinality(l.categories)] || ', '
              || l.colors[1 + (u.product / cardinality(l.categories)) % cardinality(l.colors)]
         END,
    CASE WHEN u.channel = 'review' AND u.stars >= 4 AND u.r_e < 0.25 THEN ''
         ELSE {_pick("u.phrases", "u.r_a")}
              || CASE WHEN u.r_b < 0.25 THEN ' ' || {_pick("u.phrases", "u.r_c")}
                      WHEN u.r_b < 0.5 AND u.channel = 'review'
                      THEN ' ' || {_pick("l.filler", "u.r_c")}
                      ELSE '' END
              || CASE WHEN u.alarming THEN ' ' || {_pick("l.urgent", "u.r_m")} ELSE '' END
    END,
    CASE WHEN u.channel = 'review' AND u.r_g < 0.35 THEN {_pick("l.pros", "u.r_h")} END,
    CASE WHEN u.channel = 'review' AND u.stars <= 3 AND u.r_g > 0.5
         THEN {_pick("l.cons", "u.r_h")} END,
    CASE WHEN u.channel = 'review' THEN u.stars END,
    CASE WHEN u.channel = 'review' AND u.r_f > 0.8 THEN 1 + floor(u.r_n * 5)::int ELSE 0 END,
    u.status,
    CASE WHEN u.alarming THEN 'urgent'
         WHEN u.channel = 'review' THEN
              CASE WHEN u.stars <= 2 AND u.intent IN ('defect_quality', 'return_refund')
                   THEN 'urgent'
                   WHEN u.stars <= 2 THEN 'high'
                   WHEN u.stars = 3 OR u.intent IN ('defect_quality', 'return_refund')
                   THEN 'normal'
                   ELSE 'low' END
         WHEN u.channel = 'question' THEN
              CASE WHEN u.intent = 'other' THEN 'normal' ELSE 'high' END
         WHEN u.intent IN ('return_refund', 'defect_quality') THEN 'urgent'
         ELSE 'high' END,
    CASE WHEN u.alarming THEN 'safety, fraud or legal wording'
         WHEN u.channel = 'review' THEN u.stars || '★ review (' || u.intent || ')'
         WHEN u.channel = 'question' THEN 'question (' || u.intent || ')'
         ELSE 'buyer chat about ' || u.intent END,
    u.intent,
    u.status = 'open',
    u.status <> 'open' OR u.r_e < 0.5,
    CASE WHEN u.seller_id = $1 AND u.r_f < 0.1 THEN $6::bigint END,
    coalesce(u.open_due,
             CASE WHEN u.channel <> 'chat' THEN u.occurred + u.sla_min * interval '1 minute' END),
    u.occurred,
    CASE WHEN u.status IN ('responded', 'pending_reply') AND u.channel <> 'review'
         THEN u.occurred + u.r_n * u.sla_min * 1.5 * interval '1 minute' END,
    'wb_api',
    CASE u.channel
      WHEN 'review' THEN jsonb_build_object(
        'answer', CASE WHEN u.status IN ('responded', 'pending_reply') THEN jsonb_build_object(
            'text', {_pick("l.replies", "u.r_m")},
            'state', CASE WHEN u.status = 'pending_reply' THEN 'reviewRequired' ELSE 'wbRu' END,
            'editable', false) END,
        'state', 'wbRu', 'brand', l.brands[1 + u.product % cardinality(l.brands)],
        'size', {_pick("l.sizes", "u.r_h")}, 'order_status', 'buyout',
        'matching_size', CASE WHEN u.intent = 'sizing_fit' AND u.stars <= 3 THEN 'smaller'
                              ELSE 'ok' END,
        'bables', '[]'::jsonb, 'has_video', false, 'was_viewed', true,
        'parent_feedback_id', NULL)
      WHEN 'question' THEN jsonb_build_object(
        'answer', CASE WHEN u.status = 'responded' THEN jsonb_build_object(
            'text', {_pick("l.replies", "u.r_m")}, 'editable', true,
            'createDate', u.occurred + u.r_n * interval '6 hours') END,
        'state', CASE WHEN u.status = 'closed' THEN 'none' ELSE 'wbRu' END,
        'brand', l.brands[1 + u.product % cardinality(l.brands)],
        'was_viewed', true, 'is_warned', false)
      ELSE jsonb_build_object(
        'reply_sign', md5(u.n::text), 'last_message_at', u.occurred + interval '30 minutes',
        'last_sender', CASE WHEN u.status = 'open' THEN 'client' ELSE 'seller' END,
        'price', 990 + (u.product % 50) * 100, 'size', {_pick("l.sizes", "u.r_h")})
    END
FROM u CROSS JOIN l
ORDER BY u.occurred  -- in the order they occurred, as the sync stores them (dateAsc windows)
"""  # noqa: S608 - interpolates only this module's constants

# Every chat gets 2–7 messages, alternating buyer/seller; the last is the buyer's when open.
LOAD_MESSAGES = """
INSERT INTO chat_messages (seller_id, interaction_id, external_id, direction, sender_name, text,
                           attachments, sent_at)
SELECT i.seller_id, i.id, i.external_id || '-ev' || g, d.direction,
       CASE WHEN d.direction = 'in' THEN i.customer_name ELSE 'seller' END,
       CASE WHEN g = m.cnt AND d.direction = 'in' THEN i.text
            WHEN d.direction = 'in'
            THEN l.chat_any[1 + (i.id * 7 + g) % cardinality(l.chat_any)]
            ELSE l.replies[1 + (i.id * 13 + g) % cardinality(l.replies)] END,
       '[]'::jsonb,
       i.occurred_at + (g - 1) * interval '9 minutes'
FROM interactions i
CROSS JOIN LATERAL (SELECT 2 + (i.id % 6)::int AS cnt) m
CROSS JOIN LATERAL generate_series(1, m.cnt) AS g
CROSS JOIN LATERAL (
    SELECT CASE WHEN g = m.cnt THEN CASE WHEN i.status = 'open' THEN 'in' ELSE 'out' END
                WHEN g % 2 = 1 THEN 'in' ELSE 'out' END AS direction
) d
CROSS JOIN (
    SELECT max(phrases) FILTER (WHERE name = 'chat_any') AS chat_any,
           max(phrases) FILTER (WHERE name = 'replies') AS replies
    FROM bench_pool
) l
WHERE i.channel = 'chat'
"""

# A sample of the big seller's interactions, each linked to the next one on its product (level C,
# the shape the scorer produces) and, when it has a customer id, to another of that customer's
# (level B); written in both directions as the scorer does. $1 seller, $2 sample fraction.
LOAD_LINKS = """
WITH src AS (
    SELECT id, nm_id, occurred_at, customer_id
    FROM interactions
    WHERE seller_id = $1 AND random() < $2
), c_pairs AS (
    SELECT s.id AS a, t.id AS b
    FROM src s
    CROSS JOIN LATERAL (
        SELECT t.id FROM interactions t
        WHERE t.seller_id = $1 AND t.nm_id = s.nm_id AND t.occurred_at > s.occurred_at
        ORDER BY t.occurred_at LIMIT 1
    ) t
), b_pairs AS (
    SELECT s.id AS a, t.id AS b, t.order_id IS NOT NULL AS same_order
    FROM src s
    CROSS JOIN LATERAL (
        SELECT t.id, t.order_id FROM interactions t
        WHERE t.seller_id = $1 AND t.customer_id = s.customer_id AND t.id <> s.id
        LIMIT 1
    ) t
    WHERE s.customer_id IS NOT NULL
), pairs AS (
    SELECT a, b, 'C' AS level, false AS deterministic,
           round(0.45 + ((a * 31 + b) % 56) / 100.0, 3) AS confidence,
           'probable_same_customer' AS match_reason
    FROM c_pairs
    UNION ALL
    SELECT a, b, 'B', true, CASE WHEN same_order THEN 1.0 ELSE 0.9 END,
           CASE WHEN same_order THEN 'same_customer_order' ELSE 'same_customer' END
    FROM b_pairs
), both_ways AS (
    SELECT a AS source_id, b AS target_id, level, deterministic, confidence, match_reason
    FROM pairs
    UNION ALL
    SELECT b, a, level, deterministic, confidence, match_reason FROM pairs
)
INSERT INTO link_candidates (seller_id, source_id, target_id, level, deterministic, confidence,
                             band, match_reason, signals)
SELECT $1, source_id, target_id, level, deterministic, confidence,
       CASE WHEN confidence >= 0.85 THEN 'high' WHEN confidence >= 0.65 THEN 'medium'
            ELSE 'low' END,
       match_reason,
       CASE WHEN level = 'B' THEN jsonb_build_object(match_reason, confidence)
            ELSE jsonb_build_object('same_product_7d', 0.45,
                                    'within_24h', CASE WHEN confidence >= 0.65 THEN 0.2 END)
       END
FROM both_ways
ON CONFLICT (source_id, target_id) DO NOTHING
"""


# --- options -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    scale: float
    requests: int
    warmup: int
    concurrency: int
    sequential: int
    depth: int
    search_depth: int
    profile_requests: int
    load_jobs: int
    reuse_data: bool
    api_workers: int = 1
    only: frozenset[str] = frozenset()  # scenario kinds to run; empty: all

    def rows(self, full: int) -> int:
        return max(1, round(full * self.scale))


def parse_args(argv: Sequence[str]) -> Options:
    parser = arg_parser("bench.inbox_bench", __doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="scale the data (targets: 1)")
    parser.add_argument("--requests", type=int, default=1000, help="measured per scenario")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured, per scenario")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (8)")
    parser.add_argument(
        "--sequential", type=int, default=200, help="requests at concurrency 1, per scenario"
    )
    parser.add_argument("--depth", type=int, default=200, help="pages walked for deep cursors")
    parser.add_argument(
        "--search-depth",
        type=int,
        default=5,
        help="pages walked for the deep search page (relevance ranks 500 matches: 10 pages)",
    )
    parser.add_argument(
        "--profile-requests", type=int, default=60, help="in-process requests profiled/scenario"
    )
    parser.add_argument(
        "--load-jobs",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="parallel loader connections",
    )
    parser.add_argument(
        "--reuse-data",
        action="store_true",
        help="development aid: keep the database when it holds this scale's data (no reload)",
    )
    parser.add_argument(
        "--api-workers",
        type=int,
        default=1,
        help="uvicorn worker processes (1, as `make run`; docker compose runs WEB_CONCURRENCY=2)",
    )
    parser.add_argument(
        "--only",
        default="",
        help="development aid: run only these scenario kinds, comma-separated "
        f"({', '.join(SCENARIO_KINDS)})",
    )
    args = parser.parse_args(argv)
    only = frozenset(filter(None, args.only.split(",")))
    if only - set(SCENARIO_KINDS):
        parser.error(f"--only takes {', '.join(SCENARIO_KINDS)}")
    if args.scale <= 0 or args.requests < 1 or args.concurrency < 1 or args.depth < 1:
        parser.error("--scale must be > 0; --requests, --concurrency and --depth ≥ 1")
    return Options(
        args.scale,
        args.requests,
        max(0, args.warmup),
        args.concurrency,
        max(0, args.sequential),
        args.depth,
        max(1, args.search_depth),
        max(0, args.profile_requests),
        max(1, args.load_jobs),
        args.reuse_data,
        max(1, args.api_workers),
        only,
    )


# --- results -----------------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    kind: str  # one of SCENARIO_KINDS
    urls: list[str]  # the measured requests rotate through these

    @property
    def target_ms(self) -> float | None:
        targets = {"list": TARGET_LIST_MS, "search": TARGET_SEARCH_MS, "card": TARGET_CARD_MS}
        return targets.get(self.kind)  # baseline, compare, timeline: reported without one


@dataclass
class Measured(Latencies):
    scenario: Scenario = field(kw_only=True)
    sequential: list[float] = field(default_factory=list)
    api_cpu: float = float("nan")  # seconds, during the measured concurrent phase
    pg_cpu: float = float("nan")
    bench_cpu: float = float("nan")

    @property
    def ok(self) -> bool | None:
        target = self.scenario.target_ms
        if target is None:
            return None
        return (
            self.pct(0.95) <= target
            and self.non_ok == 0
            and not self.stopped_early
            and len(self.latencies) >= 1000
        )


@dataclass
class Report:
    concurrency: int
    notes: list[str] = field(default_factory=list)
    load: list[tuple[str, str, str]] = field(default_factory=list)  # step, rows, seconds
    measured: list[Measured] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)

    def missed(self) -> list[Measured]:
        return [m for m in self.measured if m.ok is False]

    def body(self) -> str:
        parts = []
        if self.load:
            parts.append(f"### Load\n\n{self.load_table()}\n")
        parts.append(f"### Latency (client-side, concurrency {self.concurrency})\n")
        parts.append(self.latency_table(self.concurrency))
        parts += [f"\n- skipped: {skipped}" for skipped in self.skipped]
        parts += [f"\n{block}" for block in self.blocks]
        return "\n".join(parts)

    def verdict(self) -> str:
        missed = self.missed()
        if not missed:
            return "All targets met."
        names = "; ".join(f"{m.scenario.name} (p95 {m.pct(0.95):.1f} ms)" for m in missed)
        return f"**{len(missed)} target(s) MISSED:** {names}"

    def load_table(self) -> str:
        lines = ["| step | rows | time |", "|---|---|---|"]
        lines += [f"| {step} | {rows} | {secs} |" for step, rows, secs in self.load]
        return "\n".join(lines)

    def latency_table(self, concurrency: int) -> str:
        head = (
            "| scenario | requests | non-200 | p50 ms | p95 ms | p99 ms | req/s | target p95 "
            "| result | p50 ms at c=1 | API CPU ms/req | API process busy | Postgres CPU ms/req "
            "| bench CPU ms/req | KB/resp |"
        )
        lines = [head, "|" + "---|" * 15]
        for m in self.measured:
            n = max(len(m.latencies), 1)
            target = f"≤ {m.scenario.target_ms:g} ms" if m.scenario.target_ms else "—"
            result = {None: "", True: "ok", False: "**MISSED**"}[m.ok]
            count = f"{m.count:,}" + (" (time limit)" if m.stopped_early else "")
            seq = statistics.median(m.sequential) * 1000 if m.sequential else float("nan")
            cells = [
                m.scenario.name,
                count,
                str(m.non_ok),
                f"{m.pct(0.50):.1f}",
                f"{m.pct(0.95):.1f}",
                f"{m.pct(0.99):.1f}",
                f"{len(m.latencies) / m.wall:.0f}" if m.wall else "—",
                f"{target} (c={concurrency})" if m.scenario.target_ms else target,
                result,
                f"{seq:.1f}",
                f"{m.api_cpu / n * 1000:.2f}",
                f"{m.api_cpu / m.wall:.0%}" if m.wall else "—",
                f"{m.pg_cpu / n * 1000:.2f}",
                f"{m.bench_cpu / n * 1000:.2f}",
                f"{m.body_bytes / n / 1024:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


# --- loading -----------------------------------------------------------------------------------


@dataclass
class Tenancy:
    big: int
    small: int
    user_id: int


def bench_settings(services: Services) -> Settings:
    return Settings(
        env="production",
        database_url=services.database_url,
        redis_url=services.redis_url,
        secrets_key=SecretStr(SECRETS_KEY),
        jwt_secret=SecretStr(JWT_SECRET),
        log_level="WARNING",
    )


async def create_tenants(settings: Settings) -> Tenancy:
    """The sellers and the operator, through the services `app.cli create-operator` uses."""
    engine = create_engine(settings, pool_size=1)
    try:
        async with transaction(create_sessionmaker(engine)) as session:
            big = await sellers_service.create_seller(session, "Bench big shop")
            small = await sellers_service.create_seller(session, "Bench other shop")
            user = await auth_service.create_user(
                session, seller_id=big.id, email=EMAIL, password=PASSWORD, role="owner"
            )
            return Tenancy(big.id, small.id, user.id)
    finally:
        await engine.dispose()


async def find_tenants(settings: Settings) -> Tenancy:
    conn = await asyncpg.connect(plain_url(settings.require_database_url()))
    try:
        row = await conn.fetchrow("SELECT id, seller_id FROM users WHERE email = $1", EMAIL)
        if row is None:
            raise BenchError("--reuse-data: the database has no bench operator")
        small = await conn.fetchval(
            "SELECT id FROM sellers WHERE id <> $1 ORDER BY id LIMIT 1", row["seller_id"]
        )
        return Tenancy(int(row["seller_id"]), int(small), int(row["id"]))
    finally:
        await conn.close()


async def _timed(conn: Any, sql: str, *args: Any) -> tuple[float, str]:
    started = time.perf_counter()
    status = await conn.execute(sql, *args, timeout=LOAD_STATEMENT_TIMEOUT)
    return time.perf_counter() - started, str(status)


def _rows(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1]) if status and status[-1].isdigit() else 0


async def load_data(services: Services, opts: Options, tenancy: Tenancy, report: Report) -> None:
    url = plain_url(services.database_url)
    big_rows, small_rows = opts.rows(BIG_ROWS), opts.rows(SMALL_ROWS)
    every = max(2, round((big_rows + small_rows) / small_rows))
    total = big_rows + small_rows
    products = max(10, min(PRODUCTS, big_rows // 50))
    customers = max(10, round(big_rows * CUSTOMERS_PER_ROW))
    now = datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'")
        await conn.execute(
            "CREATE UNLOGGED TABLE bench_pool (name text PRIMARY KEY, phrases text[] NOT NULL);"
            "CREATE UNLOGGED TABLE bench_kind (channel text, band text, lo float8, hi float8,"
            " intent text, pool text)"
        )
        await conn.executemany("INSERT INTO bench_pool VALUES ($1, $2)", list(POOLS.items()))
        kinds = []
        for (channel, band), shares in KINDS.items():
            lo = 0.0
            for i, (share, intent, pool) in enumerate(shares):
                hi = 2.0 if i == len(shares) - 1 else lo + share
                kinds.append((channel, band, lo, hi, intent, pool))
                lo = hi
        await conn.executemany("INSERT INTO bench_kind VALUES ($1, $2, $3, $4, $5, $6)", kinds)
        # Secondary indexes are built after the load (a bulk build beats 1M incremental inserts,
        # GIN most of all), then re-created from their own definitions: the schema stays alembic's.
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
            "AND tablename = 'interactions' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE conrelid = 'interactions'::regclass)"
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        say(
            f"loading {big_rows:,} + {small_rows:,} interactions ({opts.load_jobs} connections; "
            f"{len(indexes)} secondary indexes dropped until the end of the load)"
        )
        started = time.perf_counter()
        bounds = [1 + total * j // opts.load_jobs for j in range(opts.load_jobs + 1)]
        conns = [await asyncpg.connect(url) for _ in range(opts.load_jobs)]
        try:
            for j, c in enumerate(conns):
                await c.execute(f"SELECT setseed({(j + 1) / (opts.load_jobs + 1)})")
                await c.execute("SET work_mem = '256MB'")
            await asyncio.gather(
                *(
                    _timed(
                        c, LOAD_INTERACTIONS, tenancy.big, tenancy.small, bounds[j],
                        bounds[j + 1] - 1, now, tenancy.user_id, every, products, customers,
                    )
                    for j, c in enumerate(conns)
                )
            )  # fmt: skip
        finally:
            for c in conns:
                await c.close()
        seconds = time.perf_counter() - started
        report.load.append(
            ("interactions (INSERT … SELECT generate_series)", f"{total:,}", f"{seconds:.1f} s")
        )
        say(f"  interactions: {total:,} rows in {seconds:.1f} s")

        started = time.perf_counter()
        for row in indexes:
            await conn.execute(row["indexdef"], timeout=LOAD_STATEMENT_TIMEOUT)
        seconds = time.perf_counter() - started
        report.load.append(
            (
                f"{len(indexes)} secondary indexes of interactions (incl. GIN)",
                "",
                f"{seconds:.1f} s",
            )
        )
        say(f"  {len(indexes)} indexes built in {seconds:.1f} s")

        seconds, status = await _timed(conn, LOAD_MESSAGES)
        report.load.append(
            ("chat_messages (2–7 per chat)", f"{_rows(status):,}", f"{seconds:.1f} s")
        )
        say(f"  chat messages: {_rows(status):,} in {seconds:.1f} s")

        fraction = opts.rows(LINK_ROWS) / (2 * big_rows * (1 + 0.225))
        seconds, status = await _timed(conn, LOAD_LINKS, tenancy.big, fraction)
        report.load.append(
            (
                "link_candidates (level B + C, both directions)",
                f"{_rows(status):,}",
                f"{seconds:.1f} s",
            )
        )
        say(f"  link candidates: {_rows(status):,} in {seconds:.1f} s")

        await conn.execute("DROP TABLE bench_pool; DROP TABLE bench_kind")
        started = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE)", timeout=LOAD_STATEMENT_TIMEOUT)
        seconds = time.perf_counter() - started
        report.load.append(("VACUUM ANALYZE", "", f"{seconds:.1f} s"))
        say(f"  VACUUM ANALYZE in {seconds:.1f} s")
    finally:
        await conn.close()  # fmt: skip


async def describe_data(services: Services, tenancy: Tenancy, report: Report) -> list[str]:
    """The data as loaded (what the scenarios run against), for the report."""
    conn = await asyncpg.connect(plain_url(services.database_url))
    try:
        big = tenancy.big
        by = {
            r["k"]: r["n"]
            for r in await conn.fetch(
                "SELECT channel AS k, count(*) AS n FROM interactions WHERE seller_id = $1 "
                "GROUP BY 1 UNION ALL SELECT status, count(*) FROM interactions "
                "WHERE seller_id = $1 GROUP BY 1 UNION ALL SELECT 'prio:' || priority, count(*) "
                "FROM interactions WHERE seller_id = $1 GROUP BY 1",
                big,
            )
        }
        total = await conn.fetchval("SELECT count(*) FROM interactions WHERE seller_id = $1", big)
        other = await conn.fetchval(
            "SELECT count(*) FROM interactions WHERE seller_id = $1", tenancy.small
        )
        top = await conn.fetchrow(
            "SELECT nm_id, count(*) AS n, count(*) OVER () AS products "
            "FROM interactions WHERE seller_id = $1 GROUP BY nm_id ORDER BY n DESC LIMIT 1",
            big,
        )
        median = await conn.fetchval(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY n) FROM "
            "(SELECT count(*) AS n FROM interactions WHERE seller_id = $1 GROUP BY nm_id) x",
            big,
        )
        overdue = await conn.fetchval(
            "SELECT count(*) FROM interactions WHERE seller_id = $1 AND status = 'open' "
            "AND sla_due_at < now()",
            big,
        )
        sizes = await conn.fetchrow(
            "SELECT pg_size_pretty(pg_table_size('interactions')) AS heap, "
            "pg_size_pretty(pg_indexes_size('interactions')) AS idx, "
            "pg_size_pretty(pg_relation_size('ix_interactions_search')) AS gin, "
            "pg_size_pretty(pg_relation_size('ix_interactions_search_blocks')) AS blocks, "
            "pg_size_pretty(pg_database_size(current_database())) AS db, "
            "(SELECT count(*) FROM chat_messages) AS messages, "
            "(SELECT count(*) FROM link_candidates) AS links"
        )
        counts = []
        for q in SEARCHES:
            n = await conn.fetchval(
                "SELECT count(*) FROM interactions WHERE seller_id = $1 "
                "AND search_vector @@ websearch_to_tsquery('russian', $2)",
                big,
                q,
                timeout=120,
            )
            counts.append(f"`{q}` {n:,} ({n / max(total, 1):.1%})")
        settings = await conn.fetch(
            "SELECT name, current_setting(name) AS value FROM unnest($1::text[]) AS name",
            list(PG_SETTINGS),
        )
        jit = await conn.fetchval("SELECT pg_jit_available()")
        version = await conn.fetchval("SHOW server_version")
    finally:
        await conn.close()

    def share(key: str) -> str:
        return f"{by.get(key, 0):,} ({by.get(key, 0) / max(total, 1):.0%})"

    pg = ", ".join(f"{r['name']}={r['value']}" for r in settings)
    report.notes.append(f"Postgres {version}: {pg} (JIT available: {jit})")
    return [
        f"big seller: {total:,} interactions — reviews {share('review')}, questions "
        f"{share('question')}, chats {share('chat')}; open {share('open')} (of them "
        f"{overdue:,} overdue), responded {share('responded')}, pending_reply "
        f"{share('pending_reply')}, closed {share('closed')}; priority urgent "
        f"{share('prio:urgent')}, high {share('prio:high')}, normal {share('prio:normal')}, "
        f"low {share('prio:low')}",
        f"{top['products']:,} products: the top one has {top['n']:,} interactions, the median "
        f"one {median:,.0f}; second seller: {other:,} interactions (interleaved ids); "
        f"{sizes['messages']:,} chat messages; {sizes['links']:,} link candidates",
        f"sizes: interactions heap {sizes['heap']}, its indexes {sizes['idx']} (GIN: "
        f"search_vector {sizes['gin']}, block lexemes and pairs {sizes['blocks']}); "
        f"database {sizes['db']}",
        "matches per search query (big seller): " + "; ".join(counts),
    ]


# --- the load generator ------------------------------------------------------------------------


def _url(path: str, **params: Any) -> str:
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    return f"{API}{path}" + (f"?{query}" if query else "")


async def _drive(
    client: LoadClient,
    urls: Sequence[str],
    count: int,
    concurrency: int,
    deadline: float,
    result: Measured | None,
) -> bool:
    """`count` GETs over `urls` in rotation by `concurrency` workers; False when cut by time."""

    def url(i: int) -> str:
        return urls[i % len(urls)]

    return await drive(lambda i: client.get(url(i)), url, count, concurrency, deadline, result)


async def run_scenario(
    client: LoadClient,
    scenario: Scenario,
    opts: Options,
    server: ApiServer,
    pg_pid: int | None,
) -> Measured:
    result = Measured(scenario=scenario)
    deadline = time.monotonic() + SCENARIO_TIMEOUT
    urls = scenario.urls
    warm = urls[len(urls) - opts.warmup :] if len(urls) > opts.requests else urls
    await _drive(client, warm, opts.warmup, opts.concurrency, deadline, None)
    server.check_alive()
    api0, pg0 = tree_cpu_seconds(server.pid), _pg_cpu(pg_pid)
    bench0 = process_cpu_seconds(os.getpid())
    started = time.perf_counter()
    finished = await _drive(client, urls, opts.requests, opts.concurrency, deadline, result)
    result.wall = time.perf_counter() - started
    result.api_cpu = tree_cpu_seconds(server.pid) - api0
    result.pg_cpu = _pg_cpu(pg_pid) - pg0
    result.bench_cpu = process_cpu_seconds(os.getpid()) - bench0
    result.stopped_early = not finished
    server.check_alive()
    sequential = Measured(scenario=scenario)
    seq_deadline = time.monotonic() + SEQUENTIAL_TIMEOUT
    await _drive(client, urls, opts.sequential, 1, seq_deadline, sequential)
    result.sequential = sequential.latencies
    return result


def _pg_cpu(pid: int | None) -> float:
    return tree_cpu_seconds(pid) if pid is not None else float("nan")


async def walk(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], pages: int, keep: int
) -> list[str]:
    """Follow next_cursor `pages` pages deep; the URLs of the last `keep` pages reached."""
    urls: list[str] = []
    cursor: str | None = None
    deadline = time.monotonic() + WALK_TIMEOUT
    for page in range(pages + keep):
        url = _url(path, **params, cursor=cursor)
        if page >= pages:
            urls.append(url)
        response = await client.get(url)
        if response.status_code != 200:
            raise BenchError(f"walking {url}: {response.status_code} {response.text[:300]}")
        cursor = response.json()["next_cursor"]
        if cursor is None or time.monotonic() > deadline:
            break
    if not urls:
        raise BenchError(f"{path} {params}: fewer than {pages} pages (or walk timed out)")
    return urls


async def sample_ids(
    services: Services, seller_id: int, n: int, seed: float
) -> list[tuple[int, str]]:
    """`n` distinct random (id, channel) of the seller, the same for the same seed."""
    conn = await asyncpg.connect(plain_url(services.database_url))
    try:
        await conn.execute(f"SELECT setseed({seed})")
        rows = await conn.fetch(
            "SELECT id, channel FROM interactions WHERE seller_id = $1 ORDER BY random() LIMIT $2",
            seller_id,
            n,
        )
    finally:
        await conn.close()
    return [(int(r["id"]), str(r["channel"])) for r in rows]


async def hot_id(services: Services, seller_id: int) -> int:
    """The newest review on the seller's busiest product: the card's worst case."""
    conn = await asyncpg.connect(plain_url(services.database_url))
    try:
        return int(
            await conn.fetchval(
                "SELECT id FROM interactions WHERE seller_id = $1 AND channel = 'review' AND "
                "nm_id = (SELECT nm_id FROM interactions WHERE seller_id = $1 GROUP BY nm_id "
                "ORDER BY count(*) DESC LIMIT 1) ORDER BY occurred_at DESC LIMIT 1",
                seller_id,
            )
        )
    finally:
        await conn.close()


def _mix(sample: Sequence[tuple[int, str]]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for _, channel in sample:
        counts[channel] += 1
    return ", ".join(f"{counts[c]:,} {c}s" for c in ("review", "question", "chat"))


# --- in-process: SQL capture, EXPLAIN, profile -------------------------------------------------


@dataclass
class Captured:
    sql: str
    params: tuple[Any, ...]
    origin: str  # the app function that sent it (file:line name)


def _origin() -> str:
    """The innermost frame under app/ (outside app/core) of the coroutine waiting on this SQL.

    SQLAlchemy's asyncio layer runs the statement in a child greenlet; the caller's coroutine
    frames hang off the parent greenlet's suspended frame."""
    app_dir = str(ROOT / "app") + os.sep
    parent = greenlet.getcurrent().parent
    frame = parent.gr_frame if parent is not None else None
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(app_dir) and not name.startswith(app_dir + "core"):
            rel = os.path.relpath(name, ROOT)
            return f"{rel}:{frame.f_code.co_firstlineno} {frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


# Where the instrumented pass looks: every public function of these modules is wrapped (the
# module attribute, which is how the app's own callers reach it), plus FastAPI's response step.
INSTRUMENTED = (
    "app.auth.service",
    "app.auth.repository",
    "app.interactions.service",
    "app.interactions.repository",
    "app.links.service",
    "app.links.repository",
)
REPOSITORIES = ("app.interactions.repository", "app.links.repository", "app.auth.repository")


@dataclass
class Timed:
    label: str  # file:line name
    module: str
    is_async: bool
    seconds: float = 0.0  # thread CPU
    calls: int = 0


class Instrument:
    """Thread CPU time per call of the app's service/repository functions, in this process only:
    each module attribute is replaced by a timing wrapper while the block runs, then restored.
    At concurrency 1 a coroutine's thread CPU between its start and its end is its own work
    (and its callees'): the waits on Postgres cost none."""

    def __init__(self) -> None:
        self.timed: dict[str, Timed] = {}
        self._restore: list[tuple[Any, str, Any]] = []

    def __enter__(self) -> "Instrument":
        for name in INSTRUMENTED:
            module = sys.modules[name]
            for attr, fn in list(vars(module).items()):
                if inspect.isfunction(fn) and fn.__module__ == name and not attr.startswith("_"):
                    self._wrap(module, attr, fn, name)
        self._wrap(fastapi_routing, "serialize_response", fastapi_routing.serialize_response)
        return self

    def __exit__(self, *exc: object) -> None:
        for module, attr, original in reversed(self._restore):
            setattr(module, attr, original)
        self._restore.clear()

    def _wrap(self, module: Any, attr: str, fn: Any, name: str = "fastapi.routing") -> None:
        code = fn.__code__
        where = code.co_filename.removeprefix(str(ROOT) + os.sep)
        if "site-packages" in where:
            where = "fastapi/routing.py"
        timed = Timed(
            f"{where}:{code.co_firstlineno} {attr}", name, inspect.iscoroutinefunction(fn)
        )
        self.timed[timed.label] = timed
        wrapper: Any
        if timed.is_async:

            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.thread_time()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    timed.seconds += time.thread_time() - started
                    timed.calls += 1

        else:

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                started = time.thread_time()
                try:
                    return fn(*args, **kwargs)
                finally:
                    timed.seconds += time.thread_time() - started
                    timed.calls += 1

        functools.update_wrapper(wrapper, fn)
        self._restore.append((module, attr, fn))
        setattr(module, attr, wrapper)


class InProcess:
    """The app served in this process through httpx.ASGITransport, its SQL captured at the
    driver (the exact text and parameters asyncpg receives)."""

    def __init__(self, settings: Settings, token: str) -> None:
        self.settings = settings
        self.token = token
        self.app: FastAPI = create_app(settings)
        self.capturing = False
        self.captured: list[Captured] = []
        self._stack = contextlib.AsyncExitStack()
        self.client: httpx.AsyncClient | None = None
        self.db: Any = None  # a raw asyncpg connection for EXPLAIN and replays
        self._prepared: dict[str, Any] = {}  # its prepared statements by SQL
        self.app_cpu = 0.0  # thread CPU inside the ASGI app (seconds), see _timed_app

    async def __aenter__(self) -> "InProcess":
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        event.listen(self.app.state.engine.sync_engine, "before_cursor_execute", self._on_sql)
        self.client = await self._stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self._timed_app),
                base_url="http://in-process",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=REQUEST_TIMEOUT,
            )
        )
        self.db = await asyncpg.connect(
            plain_url(self.settings.require_database_url()),
            server_settings=server_settings(self.settings),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.db is not None:
            await self.db.close()
        await self._stack.aclose()

    async def _timed_app(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.thread_time()
        try:
            await self.app(scope, receive, send)
        finally:
            self.app_cpu += time.thread_time() - started

    def _on_sql(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if self.capturing:
            self.captured.append(Captured(statement, tuple(parameters or ()), _origin()))

    async def get(self, url: str) -> httpx.Response:
        assert self.client is not None
        return await self.client.get(url)

    async def capture(self, url: str) -> list[Captured]:
        self.captured, self.capturing = [], True
        try:
            response = await self.get(url)
        finally:
            self.capturing = False
        if response.status_code != 200:
            raise BenchError(f"in-process {url}: {response.status_code} {response.text[:300]}")
        return self.captured

    async def explain(self, stmt: Captured) -> str:
        rows = await self.db.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + stmt.sql, *stmt.params, timeout=REQUEST_TIMEOUT
        )
        return "\n".join(r[0] for r in rows)

    async def replay(self, stmt: Captured) -> float:
        """The statement alone on the driver, prepared once per connection as SQLAlchemy does
        (asyncpg's own cache skips statements over 15 kB, such as the search's, and would plan
        them at every call): seconds."""
        prepared = self._prepared.get(stmt.sql)
        if prepared is None:
            prepared = self._prepared[stmt.sql] = await self.db.prepare(stmt.sql)
        started = time.perf_counter()
        await prepared.fetch(*stmt.params, timeout=REQUEST_TIMEOUT)
        return time.perf_counter() - started


WAIT = "waiting (loop idle: Postgres, network)"
LOOP = "asyncio + socket I/O"
SQLA = "SQLAlchemy (build, execute, ORM rows)"
ASYNCPG = "asyncpg"
PYDANTIC = "pydantic (validate, serialize)"
WEB = "FastAPI/Starlette"
APP = "app/ own code"
CLIENT = "httpx client (in-process)"
OTHER = "other"
BUCKETS = (WAIT, LOOP, SQLA, ASYNCPG, PYDANTIC, WEB, APP, CLIENT, OTHER)

FuncKey = tuple[str, int, str]
StatsRow = tuple[int, int, float, float, dict[FuncKey, tuple[int, int, float, float]]]


def _bucket(filename: str, name: str) -> str:
    """The package a profiled function belongs to; OTHER for the standard library and builtins
    that no name ties to a package (those are then charged to their callers)."""
    if filename == "~":
        if "poll" in name and ("epoll" in name or "select" in name):
            return WAIT
        for needle, bucket in (
            ("_socket.socket", LOOP),
            ("asyncpg", ASYNCPG),
            ("pydantic", PYDANTIC),
            ("sqlalchemy", SQLA),
            ("greenlet", SQLA),  # SQLAlchemy's asyncio bridge
        ):
            if needle in name:
                return bucket
        return OTHER
    for needles, bucket in (
        (("/sqlalchemy/", "/greenlet/"), SQLA),
        (("/asyncpg/",), ASYNCPG),
        (("/pydantic/", "/pydantic_core/"), PYDANTIC),
        (("/fastapi/", "/starlette/"), WEB),
        (("/httpx/", "/httpcore/", "/h11/", "/anyio/"), CLIENT),
        (("/asyncio/", "/selectors.py"), LOOP),
    ):
        if any(n in filename for n in needles):
            return bucket
    if filename.startswith(str(ROOT / "app")):
        return APP
    return OTHER


def attribute(raw: dict[FuncKey, StatsRow]) -> dict[str, float]:
    """Own time per bucket (seconds). A function in OTHER (isinstance, copy.copy, typing…) is
    charged to its callers' buckets in proportion to the time it spent under each (two levels)."""
    own = {key: _bucket(key[0], key[2]) for key in raw}

    def resolved(key: FuncKey, depth: int) -> dict[str, float]:
        bucket = own.get(key, OTHER)
        callers = raw[key][4] if key in raw else {}
        total = sum(c[2] for c in callers.values())
        if bucket != OTHER or depth == 0 or total <= 0:
            return {bucket: 1.0}
        shares: dict[str, float] = defaultdict(float)
        for caller, entry in callers.items():
            for b, w in resolved(caller, depth - 1).items():
                shares[b] += w * entry[2] / total
        return shares

    buckets: dict[str, float] = defaultdict(float)
    for key, row in raw.items():
        for bucket, weight in resolved(key, 2).items():
            buckets[bucket] += row[2] * weight
    return buckets


@dataclass
class GcWatch:
    """Garbage-collector passes while the block runs (count, total and longest pause)."""

    passes: int = 0
    seconds: float = 0.0
    longest: float = 0.0
    _started: float = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            pause = time.perf_counter() - self._started
            self.passes += 1
            self.seconds += pause
            self.longest = max(self.longest, pause)

    def __enter__(self) -> "GcWatch":
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)


@dataclass
class Profiled:
    scenario: Scenario
    timed_requests: int  # the instrumented pass (no profiler)
    app_ms: float  # thread CPU inside the ASGI app per request
    functions: list[Timed]  # per-function thread CPU, totals over timed_requests
    gc: GcWatch
    requests: int  # the cProfile pass
    wall_ms: float  # per request, under the profiler
    buckets: dict[str, float]  # ms per request (own time)
    db_ms: float  # the request's statements replayed alone, ms (median)
    replayed: int
    statements: list[tuple[str, float, str]]  # (origin, median ms alone, first SQL line)

    def per_request(self, timed: Timed) -> float:
        return timed.seconds / max(self.timed_requests, 1) * 1000

    def stages(self) -> dict[str, float]:
        """CPU ms per request: the whole app and its parts (see STAGES)."""
        by_module: dict[str, list[Timed]] = defaultdict(list)
        for t in self.functions:
            by_module[t.module].append(t)
        services = by_module["app.interactions.service"] + by_module["app.links.service"]
        entry = max((self.per_request(t) for t in services), default=0.0)
        auth = sum(self.per_request(t) for t in by_module["app.auth.service"])
        response = sum(self.per_request(t) for t in by_module["fastapi.routing"])
        repository = sum(
            self.per_request(t)
            for module in ("app.interactions.repository", "app.links.repository")
            for t in by_module[module]
            if t.is_async
        )
        reads = sum(self.per_request(t) for t in services if t.label.endswith(" read"))
        return {
            STAGES[0]: self.app_ms,
            STAGES[1]: auth,
            STAGES[2]: entry,
            STAGES[3]: repository,
            STAGES[4]: reads,
            STAGES[5]: response,
            STAGES[6]: self.app_ms - auth - entry - response,
        }


STAGES = (
    "whole request in the app",
    "auth (`app/auth/service.py` resolve_bearer)",
    "service (the endpoint's service function, callees included)",
    "… of which repository functions (SQL build + execute + ORM rows)",
    "… of which `read()` per row (`app/interactions/service.py:39`)",
    "response (FastAPI serialize_response: validate + JSON)",
    "the rest: routing, request parsing, dependencies, session begin/commit, middleware",
)


async def profile_scenario(inproc: InProcess, scenario: Scenario, count: int) -> Profiled:
    urls = [scenario.urls[i % len(scenario.urls)] for i in range(count)]
    for url in urls[:3]:  # warm this process' caches (compiled SQL, prepared statements)
        await inproc.get(url)

    # 1. Thread CPU per function, no profiler.
    timed_requests = 0
    inproc.app_cpu = 0.0
    deadline = time.monotonic() + PROFILE_TIMEOUT
    with Instrument() as instrument, GcWatch() as gcw:
        for url in urls:
            await inproc.get(url)
            timed_requests += 1
            if time.monotonic() > deadline:
                break
    app_ms = inproc.app_cpu / max(timed_requests, 1) * 1000
    functions = [t for t in instrument.timed.values() if t.calls]

    # 2. Own time per package under cProfile.
    profiler = cProfile.Profile()
    done = 0
    deadline = time.monotonic() + PROFILE_TIMEOUT
    started = time.perf_counter()
    profiler.enable()
    for url in urls:
        await inproc.get(url)
        done += 1
        if time.monotonic() > deadline:
            break
    profiler.disable()
    wall = time.perf_counter() - started
    n = max(done, 1)
    raw: dict[FuncKey, StatsRow] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    buckets = attribute(raw)

    # 3. The DB part alone: each request's statements replayed on the driver.
    per_request: list[float] = []
    per_statement: dict[str, list[float]] = defaultdict(list)
    first_line: dict[str, str] = {}
    deadline = time.monotonic() + PROFILE_TIMEOUT
    for url in urls[:30]:
        total = 0.0
        for stmt in await inproc.capture(url):
            seconds = await inproc.replay(stmt)
            total += seconds
            per_statement[stmt.origin].append(seconds)
            first_line.setdefault(stmt.origin, " ".join(stmt.sql.split())[:90])
        per_request.append(total)
        if time.monotonic() > deadline:
            break
    statements = sorted(
        (
            (origin, statistics.median(v) * 1000, first_line[origin])
            for origin, v in per_statement.items()
        ),
        key=lambda s: -s[1],
    )
    return Profiled(
        scenario,
        timed_requests,
        app_ms,
        functions,
        gcw,
        done,
        wall / n * 1000,
        {k: v / n * 1000 for k, v in buckets.items()},
        statistics.median(per_request) * 1000 if per_request else float("nan"),
        len(per_request),
        statements,
    )


def _detailed(scenario: Scenario) -> bool:
    """The filter and sort variants of a list repeat their sibling's detail."""
    return "status=open" not in scenario.name and "sort=newest" not in scenario.name


def profile_block(profiles: Sequence[Profiled]) -> str:
    lines = [
        "### Where the time goes (in-process, concurrency 1)",
        "",
        "Each scenario's URLs served in this process through `httpx.ASGITransport` (the same app, "
        "settings and engine as the server; the default asyncio loop instead of uvloop), one "
        "request at a time, three passes: (1) the app's service and repository functions wrapped "
        "for thread CPU time per call (no profiler; waits on Postgres cost none), with the "
        "garbage collector's pauses; (2) cProfile, own time per package (the profiler inflates "
        "Python 2–4×: read shares); (3) the requests' SQL replayed alone on a bare asyncpg "
        "connection (*DB alone*: round trip incl. rows, no ORM; median).",
        "",
        "CPU ms per request by stage (pass 1):",
        "",
        "| scenario | requests | " + " | ".join(STAGES) + " | GC passes/req, ms/req (longest) |",
        "|" + "---|" * (3 + len(STAGES)),
    ]
    for p in profiles:
        n = max(p.timed_requests, 1)
        stages = p.stages()
        cells = [p.scenario.name, str(p.timed_requests)]
        cells += [f"{stages[label]:.2f}" for label in STAGES]
        cells.append(
            f"{p.gc.passes / n:.2f}, {p.gc.seconds / n * 1000:.2f} ({p.gc.longest * 1000:.1f})"
        )
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Own time per package, ms per request under cProfile (pass 2; builtins charged to their "
        "callers' package), and the SQL alone (pass 3):",
        "",
        "| scenario | requests | wall ms/req (profiled) | DB alone ms/req | "
        + " | ".join(BUCKETS)
        + " |",
        "|" + "---|" * (4 + len(BUCKETS)),
    ]
    for p in profiles:
        cells = [p.scenario.name, str(p.requests), f"{p.wall_ms:.1f}", f"{p.db_ms:.1f}"]
        cells += [f"{p.buckets.get(b, 0.0):.1f}" for b in BUCKETS]
        lines.append("| " + " | ".join(cells) + " |")
    for p in profiles:
        if not _detailed(p.scenario):
            continue
        lines += ["", f"**{p.scenario.name}**", ""]
        lines += [
            f"- SQL alone {ms:.2f} ms/req `{origin}`: `{sql}…`" for origin, ms, sql in p.statements
        ]
        top = sorted(p.functions, key=lambda t: -t.seconds)[:8]
        n = max(p.timed_requests, 1)
        lines += [
            f"- CPU {p.per_request(t):.2f} ms/req ({t.calls / n:.1f} calls) `{t.label}`"
            for t in top
        ]
    return "\n".join(lines)


# --- the run -----------------------------------------------------------------------------------


async def has_timeline(client: httpx.AsyncClient) -> bool:
    paths = (await client.get("/openapi.json")).json().get("paths", {})
    return f"{API}/interactions/{{interaction_id}}/timeline" in paths


async def build_scenarios(
    client: httpx.AsyncClient,
    services: Services,
    opts: Options,
    tenancy: Tenancy,
    timeline: bool,
) -> list[Scenario]:
    keep = 10  # deep cursors to rotate among
    path = "/interactions"
    say(f"walking cursors {opts.depth} pages deep (limit {PAGE}; {keep} deep cursors each)")
    deep_default = await walk(client, path, {"limit": PAGE}, opts.depth, keep)
    deep_open = await walk(client, path, {"limit": PAGE, "status": "open"}, opts.depth, keep)
    deep_newest = await walk(client, path, {"limit": PAGE, "sort": "newest"}, opts.depth, keep)
    say(f"walking the search cursor {opts.search_depth} pages deep for each query")
    deep_search: list[str] = []
    for q in SEARCHES:
        with contextlib.suppress(BenchError):  # a query with fewer pages is left out
            deep_search += await walk(client, path, {"limit": PAGE, "q": q}, opts.search_depth, 1)
    if not deep_search:
        raise BenchError("no search query has enough pages for the deep search scenario")
    total = opts.requests + opts.warmup
    cards = await sample_ids(services, tenancy.big, total, 0.11)
    scenarios = [
        # What every request pays before the inbox does anything (no target).
        Scenario("baseline (no target): GET /healthz, no auth, no DB", "baseline", ["/healthz"]),
        Scenario(
            "baseline (no target): GET /auth/me, auth + 1 query", "baseline", [f"{API}/auth/me"]
        ),
        Scenario("list: first page, default sort (priority)", "list", [_url(path, limit=PAGE)]),
        Scenario("list: first page, status=open", "list", [_url(path, limit=PAGE, status="open")]),
        Scenario("list: first page, sort=newest", "list", [_url(path, limit=PAGE, sort="newest")]),
        Scenario(f"list: page {opts.depth + 1}+, default sort", "list", deep_default),
        Scenario(f"list: page {opts.depth + 1}+, status=open", "list", deep_open),
        Scenario(f"list: page {opts.depth + 1}+, sort=newest", "list", deep_newest),
        Scenario(
            f"search: first page, {len(SEARCHES)} queries (relevance)",
            "search",
            [_url(path, limit=PAGE, q=q) for q in SEARCHES],
        ),
        Scenario(
            f"search: page {opts.search_depth + 1}, {len(deep_search)} queries",
            "search",
            deep_search,
        ),
        Scenario(
            "compare (no target): search first page, newest first, same queries",
            "compare",
            [_url(path, limit=PAGE, q=q, sort="newest") for q in SEARCHES],
        ),
        Scenario(
            f"card: {len(cards):,} distinct ids ({_mix(cards)})",
            "card",
            [f"{API}{path}/{i}" for i, _ in cards],
        ),
    ]
    if timeline:
        sample = await sample_ids(services, tenancy.big, total, 0.37)
        scenarios.append(
            Scenario(
                f"timeline: {len(sample):,} distinct ids ({_mix(sample)})",
                "timeline",
                [f"{API}{path}/{i}/timeline" for i, _ in sample],
            )
        )
    return [s for s in scenarios if not opts.only or s.kind in opts.only]


def _sql_block(stmt: Captured, plan: str) -> list[str]:
    params = ", ".join(repr(p) for p in stmt.params)
    return ["```sql", stmt.sql.strip(), f"-- parameters: {params}", "```", "```", plan, "```", ""]


def _plan_ms(plan: str, what: str) -> float:
    found = re.search(rf"{what} Time: ([0-9.]+) ms", plan)
    return float(found.group(1)) if found else float("nan")


async def explain_block(inproc: InProcess, scenarios: Sequence[Scenario], hot: int | None) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the list statement the API sends (captured at the driver)
    for the first URL of the list and search scenarios that matter, and of every statement of a
    card (and timeline) on the busiest product."""
    wanted = [
        (s, url)
        for s in scenarios
        if s.name.startswith(("list: first page, default", "list: page", "search", "compare"))
        and _detailed(s)
        for url in (
            # the most frequent query and one of the rarest
            [s.urls[0], s.urls[SEARCHES.index("брак доставка")]]
            if s.kind == "compare"
            else s.urls[:1]
        )
    ]
    lines = ["### EXPLAIN (ANALYZE, BUFFERS), the SQL exactly as the API sends it", ""]
    for scenario, url in wanted:
        captured = await inproc.capture(url)
        main = [c for c in captured if "FROM interactions" in c.sql and "ORDER BY" in c.sql]
        for stmt in main[:1]:
            lines += [f"**{scenario.name}** — `GET {urllib.parse.unquote(url)}`", ""]
            lines += _sql_block(stmt, await inproc.explain(stmt))
    for scenario in scenarios:
        if scenario.kind not in ("card", "timeline") or hot is None:
            continue
        url = f"{API}/interactions/{hot}" + ("/timeline" if scenario.kind == "timeline" else "")
        plans = [(stmt, await inproc.explain(stmt)) for stmt in await inproc.capture(url)]
        lines += [
            f"**{scenario.kind} of interaction {hot}, the newest review on the busiest product** "
            f"— `GET {url}`: every statement (planning + execution ms, from EXPLAIN ANALYZE)",
            "",
        ]
        lines += [
            f"- {_plan_ms(plan, 'Planning'):.2f} + {_plan_ms(plan, 'Execution'):.2f} ms "
            f"`{stmt.origin}`"
            for stmt, plan in plans
        ]
        slowest = max(plans, key=lambda sp: _plan_ms(sp[1], "Execution"), default=None)
        if slowest is not None:
            lines += ["", f"The slowest, `{slowest[0].origin}`:", ""]
            lines += _sql_block(*slowest)
    return "\n".join(lines)


async def gc_run(
    inproc: InProcess, urls: Sequence[str], count: int, concurrency: int
) -> tuple[list[float], float, GcWatch]:
    """`count` requests at `concurrency` in-process: latencies (s), wall (s), the GC passes."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            url = urls[next_index % len(urls)]
            next_index += 1
            started = time.perf_counter()
            await inproc.get(url)
            latencies.append(time.perf_counter() - started)

    for url in urls[:20]:
        await inproc.get(url)
    with GcWatch() as watch:
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(concurrency))), GC_RUN_TIMEOUT
        )
        wall = time.perf_counter() - started
    return latencies, wall, watch


async def gc_block(inproc: InProcess, scenarios: Sequence[Scenario], concurrency: int) -> str:
    """The collector's pauses with 8 requests in flight, as the server's process runs them, and
    with the long-lived heap frozen after startup (`gc.collect(); gc.freeze()`, applied here in
    the benchmark's process only)."""
    lines = [
        f"### Garbage collection at concurrency {concurrency} (in-process)",
        "",
        f"{GC_RUN_REQUESTS} requests at concurrency {concurrency} served in this process (which "
        "holds the app's imports like the server, plus the benchmark's own modules): as is, "
        "then after `gc.collect(); gc.freeze()` (the long-lived objects moved out of the "
        "collector's reach; done here, not in app/), then unfrozen again.",
        "",
        "| scenario | heap | req/s | p50 ms | p95 ms | p99 ms | max ms | GC passes | GC total ms "
        "| longest GC pause ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    chosen = [
        s
        for s in scenarios
        if s.name.startswith("list: first page, default") or s.kind in ("card", "timeline")
    ]
    for scenario in chosen:
        for frozen in (False, True):
            heap = "as is"
            if frozen:
                gc.collect()
                gc.freeze()
                heap = f"frozen ({gc.get_freeze_count():,} objects)"
            try:
                latencies, wall, watch = await gc_run(
                    inproc, scenario.urls, GC_RUN_REQUESTS, concurrency
                )
            finally:
                gc.unfreeze()
            ms = [v * 1000 for v in latencies]
            cells = [
                scenario.name,
                heap,
                f"{len(ms) / wall:.0f}",
                f"{nearest_rank(ms, 0.5):.1f}",
                f"{nearest_rank(ms, 0.95):.1f}",
                f"{nearest_rank(ms, 0.99):.1f}",
                f"{max(ms):.1f}",
                str(watch.passes),
                f"{watch.seconds * 1000:.0f}",
                f"{watch.longest * 1000:.1f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_query_block(measured: Sequence[Measured]) -> str:
    """Each search query's own latencies in the concurrent phase: which make the p95."""
    lines = []
    for m in measured:
        if m.scenario.kind not in ("search", "compare") or not m.latencies:
            continue
        slow = nearest_rank(m.latencies, 0.95)
        lines += [
            f"**{m.scenario.name}** ({len(m.latencies):,} requests at concurrency 8):",
            "",
            "| query | requests | p50 ms | p95 ms | share of the requests above the p95 |",
            "|---|---|---|---|---|",
        ]
        above = sum(1 for t in m.latencies if t > slow)
        for url, times in sorted(m.by_request.items(), key=lambda kv: -nearest_rank(kv[1], 0.5)):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("q", [url])[0]
            mine = sum(1 for t in times if t > slow)
            cells = [f"`{q}`", f"{len(times):,}", f"{nearest_rank(times, 0.5) * 1000:.1f}"]
            cells += [f"{nearest_rank(times, 0.95) * 1000:.1f}", f"{mine / max(above, 1):.0%}"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(["### Search latency by query", "", *lines]) if lines else ""


def summary_of(m: Measured) -> str:
    target = m.scenario.target_ms
    check = ""
    if target is not None:
        check = f"  (target p95 ≤ {target:g} ms: {'ok' if m.ok else 'MISSED'})"
    seq = statistics.median(m.sequential) * 1000 if m.sequential else float("nan")
    return (
        f"  {m.count:,} requests, {m.non_ok} non-200, p50 {m.pct(0.5):.1f} / p95 "
        f"{m.pct(0.95):.1f} / p99 {m.pct(0.99):.1f} ms, "
        f"{len(m.latencies) / m.wall if m.wall else 0:.0f} req/s; c=1 p50 {seq:.1f} ms{check}"
    )


async def run_bench(opts: Options, report: Report) -> None:
    INBOX_DATA.mkdir(parents=True, exist_ok=True)
    services = start_services(DATABASE, INBOX_DATA)
    server: ApiServer | None = None
    try:
        say(services.describe())
        settings = bench_settings(services)
        flush_redis(services.redis_url)
        reuse = opts.reuse_data and await _has_data(services, opts)
        if reuse:
            say(f"--reuse-data: database {DATABASE} kept; alembic upgrade head")
            migrate(services.database_url)
            tenancy = await find_tenants(settings)
            report.notes.append("**--reuse-data: the data were not reloaded by this run**")
        else:
            await recreate_database(services)
            say(f"database {DATABASE} recreated; alembic upgrade head")
            migrate(services.database_url)
            tenancy = await create_tenants(settings)
            await load_data(services, opts, tenancy, report)
        data_lines = await describe_data(services, tenancy, report)
        for line in data_lines:
            say(line)
        report.notes += data_lines

        env = api_env(services, SECRETS_KEY, JWT_SECRET)
        server = ApiServer(env, INBOX_DATA / "api.log", workers=opts.api_workers)
        server.start()
        command = " ".join(server.argv()[1:]).replace(str(server.port), "<free port>")
        processes = "one process" if opts.api_workers == 1 else f"{opts.api_workers} processes"
        say(f"API up: {command} (pid {server.pid}, {processes}); log {server.log}")
        report.notes.append(
            f"API: `python {command}` — **{processes}** (uvloop + httptools), "
            "ENV=production with fixed JWT_SECRET/SECRETS_KEY, LOG_LEVEL=WARNING, default pool "
            f"(DB_POOL_SIZE {settings.db_pool_size} + overflow {settings.db_max_overflow})"
        )
        report.notes.append(
            f"load: {opts.concurrency} concurrent workers on one aiohttp.ClientSession "
            "(`bench.report.LoadClient`: keep-alive HTTP/1.1, one connection per worker; ≈ 0.1 ms "
            "of client CPU per request against a minimal server, httpx.AsyncClient ≈ 1.2 ms) in "
            f"this process; per scenario {opts.warmup} warm-up requests, then "
            f"{opts.requests:,} measured (latency = client-side, request sent → body read), "
            f"then {opts.sequential} at concurrency 1. CPU ms/req = CPU seconds of the process "
            "(tree) during the measured phase ÷ requests"
        )
        pg_pid = (
            services.postgres.proc.pid if services.postgres and services.postgres.proc else None
        )

        limits = httpx.Limits(
            max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency
        )
        async with contextlib.AsyncExitStack() as clients:
            client = await clients.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT, limits=limits)
            )
            token = await login(client, EMAIL, PASSWORD)
            client.headers["Authorization"] = f"Bearer {token}"
            # The measured load's own client (httpx: the login, the cursor walks, setup).
            load = await clients.enter_async_context(
                LoadClient(
                    server.url,
                    connections=opts.concurrency,
                    timeout=REQUEST_TIMEOUT,
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
            # The load generator's own long-lived heap (the app it imports, the corpus) out of
            # the collector's reach: its gen-2 passes must not stall the clients' clocks.
            gc.collect()
            gc.freeze()
            say("logged in as the operator (POST /api/v1/auth/login)")
            timeline = await has_timeline(client)
            if not timeline:
                report.skipped.append(
                    "timeline: `GET /api/v1/interactions/{id}/timeline` is not in the running "
                    "API's OpenAPI (app.links.router is not mounted in app/api.py yet)"
                )
                say("timeline route not mounted: that scenario is skipped")
            scenarios = await build_scenarios(client, services, opts, tenancy, timeline)
            hot = await hot_id(services, tenancy.big)
            for scenario in scenarios:
                say(f"{scenario.name}")
                measured = await run_scenario(load, scenario, opts, server, pg_pid)
                report.measured.append(measured)
                say(summary_of(measured))
                for error in measured.errors[:3]:
                    say(f"    {error}")
            if block := per_query_block(report.measured):
                report.blocks.append(block)

        server.stop()
        say("API stopped; in-process EXPLAIN and profile")
        gc.unfreeze()  # the in-process app is measured as the server runs it
        async with InProcess(settings, token) as inproc:
            report.blocks.append(await explain_block(inproc, scenarios, hot))
            say("garbage collection at concurrency 8, in-process")
            report.blocks.append(await gc_block(inproc, scenarios, opts.concurrency))
            if opts.profile_requests:
                profiles = []
                for scenario in scenarios:
                    say(f"  profiling {scenario.name}")
                    profiles.append(await profile_scenario(inproc, scenario, opts.profile_requests))
                report.blocks.append(profile_block(profiles))
    finally:
        if server is not None:
            server.stop()
        services.stop()


async def _has_data(services: Services, opts: Options) -> bool:
    try:
        conn = await asyncpg.connect(plain_url(services.database_url))
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        n = await conn.fetchval("SELECT count(*) FROM interactions")
    except asyncpg.PostgresError:
        return False
    finally:
        await conn.close()
    return bool(n == opts.rows(BIG_ROWS) + opts.rows(SMALL_ROWS))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts = parse_args(args)
    report = Report(opts.concurrency)
    work, notes = run_bench(opts, report), scale_note(opts.scale)
    return run_main("bench.inbox_bench", "Inbox API benchmark", args, work, report, notes)


if __name__ == "__main__":
    sys.exit(main())
