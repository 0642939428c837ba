-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_authority" (
    "did" TEXT NOT NULL PRIMARY KEY,
    "status" TEXT NOT NULL,
    "origin" TEXT NOT NULL DEFAULT 'registered',
    "handle" TEXT,
    "owner_rotation_key" TEXT,
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL
);
INSERT INTO "new_authority" ("created_at", "did", "status", "updated_at") SELECT "created_at", "did", "status", "updated_at" FROM "authority";
DROP TABLE "authority";
ALTER TABLE "new_authority" RENAME TO "authority";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

