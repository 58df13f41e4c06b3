// The mdtoken console script (placeholder).
"use strict";
