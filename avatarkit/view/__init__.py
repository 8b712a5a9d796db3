"""``avatarkit view``'s core: avatarkit's files as viewer primitives (:mod:`.scene`, pure numpy),
served to the browser by viser (:mod:`.server`), screenshots in headless Chromium (:mod:`.browser`)."""
