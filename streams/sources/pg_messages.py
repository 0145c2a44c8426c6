"""PostgreSQL's own words in the languages it writes its log in (`lc_messages`): the severity of a
message, the lines that follow one (`STATEMENT:  ` ...) and the permission-denied errors.

A server whose lc_messages is not English (initdb takes the host's locale: `zh_CN.UTF-8` on a
Chinese host) writes `日志:  AUDIT: ...` and `错误:  对表 credit_reports 权限不够`; pgaudit's own
`AUDIT: ` payload is never translated. The words below are PostgreSQL 15's translations
(`src/backend/po/<language>.po`), as Debian's postgresql-15 installs them
(`/usr/share/locale/<language>/LC_MESSAGES/postgres-15.mo`; tests/test_raw_sources.py checks them
against those files where they are installed). elog.c writes a severity as `_(error_severity())`
then `:  `, a following line as `_("STATEMENT:  ")`; aclcheck_error's denials are
`permission denied for <kind> %s` (SQLSTATE 42501).
"""

from __future__ import annotations

import re

SEVERITIES = ("LOG", "ERROR", "FATAL", "PANIC", "WARNING", "NOTICE", "INFO", "DEBUG")
FOLLOWING = ("STATEMENT:  ", "DETAIL:  ", "HINT:  ", "QUERY:  ", "CONTEXT:  ")
# the kinds of relation a read can be denied on (aclcheck_error, PostgreSQL 11+); "relation" is older servers'
DENIALS = tuple(
    f"permission denied for {kind} %s"
    for kind in ("table", "view", "materialized view", "foreign table", "schema", "sequence")
)

# language -> (SEVERITIES, FOLLOWING, DENIALS), each translated, in the same order
TRANSLATIONS = {
    "de": (
        ("LOG", "FEHLER", "FATAL", "PANIK", "WARNUNG", "HINWEIS", "INFO", "DEBUG"),
        ("ANWEISUNG:  ", "DETAIL:  ", "TIPP:  ", "ANFRAGE:  ", "ZUSAMMENHANG:  "),
        ("keine Berechtigung für Tabelle %s", "keine Berechtigung für Sicht %s",
         "keine Berechtigung für materialisierte Sicht %s", "keine Berechtigung für Fremdtabelle %s",
         "keine Berechtigung für Schema %s", "keine Berechtigung für Sequenz %s"),
    ),
    "es": (
        ("LOG", "ERROR", "FATAL", "PANIC", "WARNING", "NOTICE", "INFO", "DEBUG"),
        ("SENTENCIA:  ", "DETALLE:  ", "HINT:  ", "CONSULTA:  ", "CONTEXTO:  "),
        ("permiso denegado a la tabla %s", "permiso denegado a la vista %s",
         "permiso denegado a la vista materializada %s", "permiso denegado a la tabla foránea %s",
         "permiso denegado al esquema %s", "permiso denegado a la secuencia %s"),
    ),
    "fr": (
        ("LOG", "ERREUR", "FATAL", "PANIC", "ATTENTION", "NOTICE", "INFO", "DEBUG"),
        ("INSTRUCTION :  ", "DÉTAIL:  ", "ASTUCE :  ", "REQUÊTE :  ", "CONTEXTE :  "),
        ("droit refusé pour la table %s", "droit refusé pour la vue %s",
         "droit refusé pour la vue matérialisée %s", "droit refusé pour la table distante %s",
         "droit refusé pour le schéma %s", "droit refusé pour la séquence %s"),
    ),
    "it": (
        ("LOG", "ERRORE", "FATALE", "PANICO", "ATTENZIONE", "NOTIFICA", "INFO", "DEBUG"),
        ("ISTRUZIONE:  ", "DETTAGLI:  ", "SUGGERIMENTO:  ", "QUERY:  ", "CONTESTO:  "),
        ("permesso negato per la tabella %s", "permesso negato per la vista %s",
         "permesso negato per la vista materializzata %s", "permesso negato per la tabella esterna %s",
         "permesso negato per lo schema %s", "permesso negato per la sequenza %s"),
    ),
    "ja": (
        ("LOG", "ERROR", "FATAL", "PANIC", "WARNING", "NOTICE", "INFO", "DEBUG"),
        ("文:  ", "詳細:  ", "ヒント:  ", "問い合わせ:  ", "文脈:  "),
        ("テーブル %s へのアクセスが拒否されました", "ビュー %s へのアクセスが拒否されました",
         "実体化ビュー %s へのアクセスが拒否されました", "外部テーブル %s へのアクセスが拒否されました",
         "スキーマ %s へのアクセスが拒否されました", "シーケンス %s へのアクセスが拒否されました"),
    ),
    "ka": (
        ("ჟურნალი", "შეცდომა", "ფატალური", "პანიკა", "გაფრთხილება", "გაფრთხილება", "ინფორმაცია", "გამართვა"),
        ("ოპერატორი:  ", "დეტალები:  ", "მინიშნება:  ", "მოთხოვნა:  ", "კონტექსტი:  "),
        ('წვდომა აკრძალულია ცხრილზე: "%s"', 'წვდომა აკრძალულია ხედზე: "%s"',
         'წვდომა აკრძალულია მატერიალიზებულ ხედზე: "%s"', 'წვდომა აკრძალულია გარე ცხრილზე: "%s"',
         'წვდომა აკრძალულია სქემაზე: "%s"', 'წვდომა აკრძალულია მიმდევრობაზე: "%s"'),
    ),
    "ko": (
        ("로그", "오류", "치명적오류", "손상", "경고", "알림", "정보", "디버그"),
        ("명령 구문:  ", "상세정보:  ", "힌트:  ", "쿼리:", "내용:  "),
        ("%s 테이블에 대한 접근 권한 없음", "%s 뷰에 대한 접근 권한 없음", "%s 구체화된 뷰에 대한 접근 권한 없음",
         "%s 외부 테이블 접근 권한 없음", "%s 스키마(schema) 접근 권한 없음", "%s 시퀀스 접근 권한 없음"),
    ),
    "ru": (
        ("СООБЩЕНИЕ", "ОШИБКА", "ВАЖНО", "ПАНИКА", "ПРЕДУПРЕЖДЕНИЕ", "ЗАМЕЧАНИЕ", "ИНФОРМАЦИЯ", "ОТЛАДКА"),
        ("ОПЕРАТОР:  ", "ПОДРОБНОСТИ:  ", "ПОДСКАЗКА:  ", "ЗАПРОС:  ", "КОНТЕКСТ:  "),
        ("нет доступа к таблице %s", "нет доступа к представлению %s",
         "нет доступа к материализованному представлению %s", "нет доступа к сторонней таблице %s",
         "нет доступа к схеме %s", "нет доступа к последовательности %s"),
    ),
    "sv": (
        ("LOGG", "FEL", "FATALT", "PANIK", "VARNING", "NOTIS", "INFO", "DEBUG"),
        ("SATS:  ", "DETALJ:  ", "TIPS:  ", "FRÅGA:  ", "KONTEXT:  "),
        ("rättighet saknas för tabell %s", "rättighet saknas för vy %s",
         "rättighet saknas för materialiserad vy %s", "rättighet saknas för främmande tabell %s",
         "rättighet saknas för schema %s", "rättighet saknas för sekvens %s"),
    ),
    "uk": (
        ("ЗАПИСУВАННЯ", "ПОМИЛКА", "ФАТАЛЬНО", "ПАНІКА", "ПОПЕРЕДЖЕННЯ", "ПОВІДОМЛЕННЯ", "ІНФОРМАЦІЯ", "НАЛАГОДЖЕННЯ"),
        ("ІНСТРУКЦІЯ:  ", "ВІДОМОСТІ:  ", "УКАЗІВКА:  ", "ЗАПИТ:  ", "КОНТЕКСТ:  "),
        ("немає дозволу для таблиці %s", "немає дозволу для подання %s",
         "немає дозволу для матеріалізованого подання %s", "немає дозволу для сторонньої таблиці %s",
         "немає дозволу для схеми %s", "немає дозволу для послідовності %s"),
    ),
    "zh_CN": (
        ("日志", "错误", "致命错误", "比致命错误还过分的错误", "警告", "注意", "信息", "调试"),
        ("语句:  ", "详细信息:  ", "提示:  ", "查询:  ", "上下文:  "),
        ("对表 %s 权限不够", "对视图 %s 权限不够", "对物化视图 %s 权限不够", "访问外部表%s的权限不足",
         "对模式 %s 权限不够", "对于序列 %s, 权限不够"),
    ),
}  # fmt: skip

# A translated severity word -> PostgreSQL's English one (csvlog's error_severity column)
SEVERITY = {
    word: english
    for severities, _, _ in TRANSLATIONS.values()
    for word, english in zip(severities, SEVERITIES, strict=True)
    if word != english
}
# What starts a translated stderr message after the prefix -> the English level it stands for
MARKERS = {f"{word}:  ": english for word, english in SEVERITY.items()} | {
    marker: english.rstrip(": ")
    for _, following, _ in TRANSLATIONS.values()
    for marker, english in zip(following, FOLLOWING, strict=True)
    if marker != english
}
# a permission denial in any of the languages (the object's name is in the statement, not read here)
DENIED = re.compile(
    "|".join(
        re.escape(template).replace("%s", r"\S+")
        for template in sorted(
            {*DENIALS, "permission denied for relation %s"}
            | {t for _, _, denials in TRANSLATIONS.values() for t in denials}
        )
    )
)
