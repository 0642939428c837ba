-- CreateTable
CREATE TABLE "kek_state" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "current_kek_id" TEXT NOT NULL,
    "updated_at" DATETIME NOT NULL
);

