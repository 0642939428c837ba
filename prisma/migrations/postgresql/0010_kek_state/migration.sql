-- CreateTable
CREATE TABLE "kek_state" (
    "id" INTEGER NOT NULL,
    "current_kek_id" TEXT NOT NULL,
    "updated_at" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "kek_state_pkey" PRIMARY KEY ("id")
);

