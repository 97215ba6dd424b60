"""hybrid_retrieval.language_id on real Debian documentation text (copied from the mirror's
pages: Debian Administrator's Handbook ``handbook/<locale>/``, Installation Guide
``installation-guide/<lang>/``, Debian Reference ``reference/pt/``)."""

from __future__ import annotations

import pytest

from hybrid_retrieval import language_id
from hybrid_retrieval.errors import PipelineError
from hybrid_retrieval.language_id import identify, in_declared_language, normalize_code

# handbook/<locale>/apt.html and others: one translated paragraph per language.
PARAGRAPHS = {
    "vi": "Dưới đây là tệp tin sources.list tiêu chuẩn cho một hệ thống đang chạy phiên bản "
          "Stable của Debian:",
    "ar": "لذلك كان مهماً أن تجمع الأقراص ذات السعات المتساوية أو المتقاربة جدًا عند إعداد "
          "مصفوفات RAID (ما عدا RAID-0 و Linear RAID)، حتى تتجنب الهدر في الموارد.",
    # installation-guide/el/ (the el-GR handbook is almost all English copies)
    "el": "Μερικές μέθοδοι εγκατάστασης απαιτούν άλλου είδους εικόνες, και όχι αυτές για τα "
          "οπτικά μέσα. Το Τμήμα 4.2.1, «Πού να βρείτε αρχεία της εγκατάστασης» εξηγεί πώς να "
          "βρείτε εικόνες σε καθρέφτες του Debian.",
    "ru": "Расширение .gz относится к файлам, сжатым утилитой gzip. gzip является быстрой и "
          "эффективной традиционной Unix утилитой для сжатия файлов.",
    "ko": "똑부러지게 말하자면, 리눅스는 단지 하드웨어와 어플리케이션을 중계하는 일종의 "
          "소프트웨어인 커널에 불과합니다.",
    "ja": "RAID がハードウェアで実装された場合、その設定は通常 BIOS セットアップツールによって"
          "なされます。",
    "fa": "RAID-5 مشکل عدم تقارن در RAID-4 را برطرف می\u200cکند: بلاک\u200cهای parity بین تمام "
          "N+1 دیسک دیگر پخش می\u200cشوند به صورتی که تنها یک دیسک نقش منحصربفرد نداشته باشد.",
    "tr": "Bilgi sistemi şirketin büyümesine ayak uydurmakta güçlük çekti, bu nedenle artık "
          "yönetim tarafından belirlenen çeşitli hedefleri karşılamak için onu tamamen yeniden "
          "tanımlamaya kararlılar:",
    "pt": "A palavra fonte pode ser ambígua. Um \"pacote fonte\" — um pacote contendo o código "
          "fonte de um programa - não deve ser confundido com uma \"fonte de pacotes\".",
    "en": "A .gz extension refers to a file compressed with the gzip utility. gzip is the fast "
          "and efficient traditional Unix utility to compress files.",
}

# handbook/vi-VN/apt.html: left in English (an exact copy of the en-US paragraph) ...
ENGLISH_COPY = ("The word source can be ambiguous. A \"source package\" — a package containing "
                "the source code of a program — should not be confused with a \"package "
                "source\" — a repository (website, FTP server, CD-ROM, local directory, etc.) "
                "which contains packages.")
# ... and English with a localised cross-reference (the exact-copy check misses it).
NEAR_COPY_VI = ("With this sources.list file APT will install packages from the Unstable suite. "
                "If that is not desired, use the APT::Default-Release setting (see Phần 6.2.3, "
                "“Nâng cấp hệ thống”) to instruct APT to pick packages from another suite (most "
                "likely Testing in this case).")
# handbook/zh-TW/: Traditional Chinese that py3langid labels yue (Cantonese).
ZH_TW = ("自動安裝套件出現在系統內。係由於從命令列取得該等資訊，可使用 aptitude why 套件名稱 "
         "(apt 與 apt-get 沒有類似的功能)：")
# handbook/id-ID/ Indonesian labelled ms (Malay); reference/pt/ European Portuguese labelled gl.
ID_AS_MS = ("Kinerja baca dan tulis identik dengan RAID-4. Di sini, sistem tetap berfungsi bila "
            "satu disk (dari N+1) gagal, tapi tak boleh lebih.")
PT_AS_GL = "Envio de pacotes danificados ao arquivo (maioritariamente para unstable)"


def test_identifier_pin_matches_installed_package():
    assert language_id.IDENTIFIER == language_id.identifier_version() == "py3langid==0.4.0"


@pytest.mark.parametrize("code, expected", [
    ("pt-BR", "pt"), ("zh_CN", "zh"), ("zh-cn", "zh"), ("zh-TW", "zh"), ("zh-tw", "zh"),
    ("ar-MA", "ar"), ("vi-VN", "vi"), ("de_DE", "de"), ("EN", "en"), ("__label__fr", "fr"),
    ("yue", "zh"), ("wuu", "zh"), ("ary", "ar"), (" ko-KR ", "ko"), ("id", "id")])
def test_normalize_code(code, expected):
    assert normalize_code(code) == expected


def test_identify_real_paragraphs():
    langs = list(PARAGRAPHS)
    result = identify([PARAGRAPHS[lang] for lang in langs])
    assert [code for code, _ in result] == langs
    assert all(0.9 <= conf <= 1.0 for _, conf in result), result


def test_identify_folds_chinese_varieties_and_handles_empty_text():
    (code, conf), (empty, zero) = identify([ZH_TW, ""])
    assert code == "zh" and 0.9 < conf <= 1.0  # yue + zh probabilities summed
    assert (empty, zero) == ("zxx", 0.0)
    assert identify([]) == []


def test_english_copies_in_a_vietnamese_document_are_flagged():
    texts = [PARAGRAPHS["vi"], ENGLISH_COPY, NEAR_COPY_VI, "apt-get update"]
    assert in_declared_language(texts, "vi") == [True, False, False, True]
    assert in_declared_language(texts, "vi-VN") == [True, False, False, True]


@pytest.mark.parametrize("lang", ["vi", "ar", "el", "ru", "ko", "ja", "fa", "tr", "pt", "en"])
def test_paragraph_in_its_language_is_kept_and_elsewhere_dropped(lang):
    other = "de" if lang != "de" else "fr"
    assert in_declared_language([PARAGRAPHS[lang]], lang) == [True]
    assert in_declared_language([PARAGRAPHS[lang]], other) == [False]  # a third language


def test_short_commands_and_names_are_undetermined_and_kept():
    texts = ["apt-get update", "/etc/apt/sources.list", "dpkg -l | grep linux-image",
             "Debian GNU/Linux", "12345 67890 !!!", ""]
    assert in_declared_language(texts, "vi") == [True] * len(texts)
    # judged anyway (min_letters=0), a command is not confidently any language either
    assert in_declared_language(texts[:3], "vi", min_letters=0) == [True] * 3
    # with no confidence floor it would be dropped: the default is what keeps it
    assert in_declared_language(["apt-get update"], "vi", min_letters=0,
                                min_confidence=0.0) == [False]


def test_translation_with_embedded_command_is_kept():
    texts = [PARAGRAPHS["vi"] + " apt-get install openssh-server",
             "sudo apt-get update && sudo apt-get install postfix libsasl2-modules: "
             + PARAGRAPHS["ru"],
             PARAGRAPHS["el"] + " (dpkg -l | grep linux-image, /etc/apt/sources.list)"]
    assert in_declared_language(texts[:1], "vi") == [True]
    assert in_declared_language(texts[1:2], "ru") == [True]
    assert in_declared_language(texts[2:], "el") == [True]


def test_accepted_confusions():
    (ms, ms_conf), (gl, gl_conf) = identify([ID_AS_MS, PT_AS_GL])
    assert (ms, gl) == ("ms", "gl") and min(ms_conf, gl_conf) >= 0.5
    assert in_declared_language([ID_AS_MS], "id") == [True]
    assert in_declared_language([PT_AS_GL], "pt") == [True]
    assert in_declared_language([ID_AS_MS], "pt") == [False]  # no group: another language
    assert in_declared_language([ZH_TW], "zh-TW") == [True]
    assert language_id.matches_declared("ms", "id-ID")
    assert not language_id.matches_declared("ms", "en")


@pytest.mark.parametrize("lang", ["xx", "klingon", "tlh", "zxx", "", "  "])
def test_unsupported_language_code_raises(lang):
    with pytest.raises(PipelineError, match="language code"):
        in_declared_language(["Xin chào"], lang)


def test_bad_arguments_raise():
    with pytest.raises(PipelineError, match="sequence of texts"):
        in_declared_language(PARAGRAPHS["vi"], "vi")  # a str, not a list of str
    with pytest.raises(PipelineError, match="sequence of texts"):
        identify("apt-get update")
    with pytest.raises(PipelineError, match="min_confidence"):
        in_declared_language([PARAGRAPHS["vi"]], "vi", min_confidence=1.5)
    with pytest.raises(PipelineError, match="min_letters"):
        in_declared_language([PARAGRAPHS["vi"]], "vi", min_letters=-1)


def test_supported_languages_cover_the_pipeline():
    supported = language_id.supported_languages()
    assert {"ar", "ru", "nl", "vi", "tr", "fa", "el", "ko", "de", "es", "fr", "it", "ja",
            "pt", "zh", "id", "en"} <= supported
    assert "yue" not in supported and "zxx" not in supported
    assert language_id.check_language("pt-BR") == "pt"
